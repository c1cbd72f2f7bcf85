"""Classification metrics of the affect benchmarks: macro/weighted F1, accuracy, NLL, ECE.

``probs`` is (N, C) with rows summing to 1, ``y`` is (N,) integer labels in [0, C).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score


def _check(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if probs.ndim != 2 or y.shape != (probs.shape[0],):
        raise ValueError(f"expected probs (N, C) and y (N,), got {probs.shape} and {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= probs.shape[1]):
        raise ValueError(f"expected labels in [0, {probs.shape[1]}), got range [{y.min()}, {y.max()}]")
    return probs, y


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood -1/N sum_i log p_i[y_i] (the papers' cross-entropy)."""
    probs, y = _check(probs, y)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: sum_b |B_b|/N * |acc(B_b) - conf(B_b)| over equal-width confidence bins."""
    probs, y = _check(probs, y)
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def classification_report(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, float]:
    """macro_f1, weighted_f1, accuracy, nll, ece of one set of predictions."""
    probs, y = _check(probs, y)
    pred = probs.argmax(1)
    labels = np.arange(probs.shape[1])
    return {
        "macro_f1": float(f1_score(y, pred, labels=labels[np.isin(labels, y)], average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y, pred, average="weighted", zero_division=0)),
        "accuracy": float(np.mean(pred == y)),
        "nll": nll(probs, y),
        "ece": ece(probs, y, bins),
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
