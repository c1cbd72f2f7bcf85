"""Measurements of the content encoders: label precision of nearest neighbours, genre kNN, throughput.

- ``precision_at_k(X, labels, k)``: for each item, the share of its k nearest neighbours (cosine, itself
  excluded) with the same label, averaged over items. Style P@10 with ``e_sty`` vs ``e_sem`` (and subject
  P@10) tells whether the two image outputs are disentangled; ``block=`` restricts neighbours to items
  whose other label differs (style P@10 across subjects, subject P@10 across styles), the stricter test.
- ``knn_multilabel_f1``: leave-one-out kNN vote over multi-label genres vs the majority baseline
  (the most frequent label set predicted for everyone), micro-F1.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows to unit L2 norm after removing the column mean (cosine on centred features). (N, D)."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def neighbours(x: np.ndarray, k: int, block: Sequence[Any] | None = None) -> np.ndarray:
    """Indices (N, k) of each row's k nearest other rows by cosine of centred features.

    ``block`` (N,) optional: rows sharing a row's ``block`` value are never its neighbours (used to ask
    "nearest item of a *different* subject")."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} items for {k} neighbours, got {len(x)}")
    z = normalise(x)
    sim = z @ z.T  # (N, N)
    if block is not None:
        block = np.asarray(block)
        same = block[:, None] == block[None, :]  # (N, N)
        if int((~same).sum(axis=1).min()) < k:
            raise ValueError(f"some item has fewer than k={k} items with a different block label")
        sim[same] = -np.inf
    np.fill_diagonal(sim, -np.inf)
    idx = np.argpartition(-sim, k, axis=1)[:, :k]  # (N, k) unordered
    order = np.argsort(-np.take_along_axis(sim, idx, axis=1), axis=1)
    return np.take_along_axis(idx, order, axis=1)  # (N, k) nearest first


def precision_at_k(x: np.ndarray, labels: Sequence[Any], k: int = 10, block: Sequence[Any] | None = None) -> float:
    """Mean share of the k nearest neighbours that share the item's label.

    With ``block`` (e.g. the subject when ``labels`` is the style), neighbours are drawn only from items
    whose block label differs: style P@k *across subjects*, which a semantic embedding cannot pass by
    finding the same subject drawn in the same style."""
    labels = np.asarray(labels)
    nn = neighbours(x, k, block)
    return float((labels[nn] == labels[:, None]).mean())


def knn_multilabel_f1(x: np.ndarray, label_sets: Sequence[Sequence[str]], k: int = 10) -> dict[str, float]:
    """Leave-one-out kNN genre prediction (a label is predicted when >= half the neighbours carry it)
    vs the majority baseline (everyone gets the most frequent label set); micro-F1 of both."""
    classes = sorted({g for gs in label_sets for g in gs})
    col = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(label_sets), len(classes)), bool)  # (N, L)
    for i, gs in enumerate(label_sets):
        y[i, [col[g] for g in gs]] = True
    nn = neighbours(x, k)
    pred = y[nn].mean(axis=1) >= 0.5  # (N, L)
    sets, counts = np.unique(y, axis=0, return_counts=True)
    majority = np.broadcast_to(sets[counts.argmax()], y.shape)
    return {"knn_micro_f1": _micro_f1(y, pred), "majority_micro_f1": _micro_f1(y, majority),
            "n_items": int(len(y)), "n_labels": len(classes), "k": k}


def _micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float((y & pred).sum())
    denom = float(y.sum() + pred.sum())
    return 2 * tp / denom if denom else 0.0


def throughput(fn, inputs: list, repeats: int = 3) -> float:
    """Items per second of ``fn(inputs)``: the median of ``repeats`` timed calls after one warm-up."""
    fn(inputs[: max(1, min(len(inputs), 8))])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - t0)
    return float(len(inputs) / np.median(times))
