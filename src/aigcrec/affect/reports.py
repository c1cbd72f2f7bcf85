"""The affect benchmarks' report of one prediction set (built on ``aigcrec.metrics``), confusion, seed summary.

``probs`` is (N, C) with rows summing to 1, ``y`` is (N,) integer labels in [0, C).
"""

from __future__ import annotations

import numpy as np

from aigcrec import metrics


def _check(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if probs.ndim != 2 or y.shape != (probs.shape[0],):
        raise ValueError(f"expected probs (N, C) and y (N,), got {probs.shape} and {y.shape}")
    return probs, y


def classification_report(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, float]:
    """macro_f1, weighted_f1, accuracy, nll, ece of one set of predictions."""
    probs, y = _check(probs, y)
    pred = probs.argmax(1)
    return {
        "macro_f1": metrics.macro_f1(y, pred, labels=np.unique(y)),  # over the classes present in y
        "weighted_f1": metrics.weighted_f1(y, pred),
        "accuracy": metrics.accuracy(y, pred),
        "nll": metrics.nll(y, probs),
        "ece": metrics.ece(y, probs, n_bins=bins),
    }


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return m


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    """Mean and std over seeds: ``{"<metric>_mean": .., "<metric>_std": ..}``."""
    out: dict[str, float] = {}
    for key in runs[0]:
        vals = np.array([r[key] for r in runs], dtype=np.float64)
        out[f"{key}_mean"] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(ddof=0))
    return out
