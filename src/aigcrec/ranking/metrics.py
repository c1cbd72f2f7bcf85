"""CTR metrics: AUC, logloss (BCE) and gAUC (per-user AUC weighted by impressions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); NaN when only one class is present."""
    y = np.asarray(y, dtype=np.float64)
    pos = y.sum()
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(p, dtype=np.float64))
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def logloss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities ``p`` against labels ``y``."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def gauc(y: np.ndarray, p: np.ndarray, groups: np.ndarray) -> float:
    """Impression-weighted mean of per-group AUCs over groups that have both classes."""
    df = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p), "g": np.asarray(groups)})
    total, weight = 0.0, 0
    for _, part in df.groupby("g", sort=False):
        a = auc(part["y"].to_numpy(), part["p"].to_numpy())
        if not np.isnan(a):
            total += a * len(part)
            weight += len(part)
    return float(total / weight) if weight else float("nan")


def ctr_metrics(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> dict[str, float]:
    """AUC, logloss and (with groups) gAUC of one prediction set."""
    out = {"auc": auc(y, p), "logloss": logloss(y, p)}
    if groups is not None:
        out["gauc"] = gauc(y, p, groups)
    return out
