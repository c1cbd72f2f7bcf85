"""Ranked lists from scores over the catalog, and the top-K metrics of a task.

``top_k(scores, masked, k)``: per user, the ``k`` best items of the catalog that are not masked, best
first (ties broken by catalog position, so a constant score ranks in catalog order).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aigcrec.metrics import ndcg_at_k, recall_at_k

CUTOFFS = (10, 20)
DEEP = 500  # Recall@500: what candidate generation keeps of the ranker-over-all ceiling


def top_k(scores: np.ndarray, masked: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Positions ``(u, k)`` of the top ``k`` unmasked items per row of ``scores (u, n)``; -1 pads short rows."""
    s = np.array(scores, dtype=np.float64, copy=True)  # (u, n)
    for r, cols in enumerate(masked):
        s[r, cols] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]  # (u, k) unordered
    vals = np.take_along_axis(s, part, 1)
    order = np.lexsort((part, -vals), axis=1)  # by score, then catalog position
    best = np.take_along_axis(part, order, 1)
    best[np.take_along_axis(vals, order, 1) == -np.inf] = -1
    return best


def mrr_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """Mean over users of ``1 / rank`` of the first relevant item in the top ``k`` (0 when none is)."""
    rr = [next((1.0 / (r + 1) for r, i in enumerate(items[:k]) if i in rel), 0.0)
          for items, rel in zip(ranked, relevant)]
    return float(np.mean(rr)) if rr else float("nan")


def metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]], n_items: int,
            deep: bool = False, cold: bool = False) -> dict[str, float]:
    """Top-K metrics of per-user ranked lists (best first) against per-user relevant sets.

    ``cold``: Recall@20 / NDCG@20 only (keys ``cold_recall_at_20``, ``cold_ndcg_at_20``); ``deep``: also
    Recall@500 (the lists must then be that long).
    """
    ranked = [list(r) for r in ranked]
    if cold:
        return {"cold_recall_at_20": recall_at_k(ranked, relevant, 20), "cold_ndcg_at_20": ndcg_at_k(ranked, relevant, 20)}
    out = {}
    for k in CUTOFFS:
        out[f"recall_at_{k}"] = recall_at_k(ranked, relevant, k)
        out[f"ndcg_at_{k}"] = ndcg_at_k(ranked, relevant, k)
    out["mrr_at_20"] = mrr_at_k(ranked, relevant, 20)
    out["coverage_at_10"] = len({i for r in ranked for i in r[:10]}) / n_items
    if deep:
        out[f"recall_at_{DEEP}"] = recall_at_k(ranked, relevant, DEEP)
    return out
