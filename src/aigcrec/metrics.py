"""Evaluation metrics of the measurement protocol (DESIGN.md section 6), numpy only.

CTR: :func:`auc`, :func:`logloss`, :func:`gauc`. Top-K: :func:`recall_at_k`, :func:`ndcg_at_k`.
Classification: :func:`accuracy`, :func:`macro_f1`, :func:`weighted_f1`, :func:`nll`, :func:`ece`,
:func:`brier` (plus :func:`reliability_bins`, the table behind ECE).

Conventions, for every function:

- Argument order is truth first, prediction second (``metric(y, p)``), as in scikit-learn.
- Empty input, mismatched lengths, labels outside the expected set, probabilities outside [0, 1] or
  not finite, probability rows not summing to 1: :class:`ValueError` saying what was expected and got.
- A metric that is *undefined* on valid input returns ``nan`` and emits an
  :class:`UndefinedMetricWarning` (never a silent number): AUC when ``y`` has one class only; gAUC
  when no user has both classes; Recall@K / NDCG@K when no user has a relevant item.
- Probabilities: binary metrics take ``p`` of shape (N,) = P(y = 1). Multi-class metrics take
  ``probs`` of shape (N, C) with rows summing to 1 (tolerance 1e-4), or (N,) meaning P(y = 1) of a
  binary problem (treated as ``[1 - p, p]``).
"""

from __future__ import annotations

import warnings
from typing import Any, Collection, Hashable, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "UndefinedMetricWarning",
    "accuracy",
    "auc",
    "brier",
    "ece",
    "gauc",
    "logloss",
    "macro_f1",
    "ndcg_at_k",
    "nll",
    "recall_at_k",
    "reliability_bins",
    "weighted_f1",
]

ROW_SUM_TOL = 1e-4


class UndefinedMetricWarning(RuntimeWarning):
    """A metric is undefined on this input (e.g. AUC with one class); the function returned ``nan``."""


def _undefined(message: str) -> float:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
    return float("nan")


# --------------------------------------------------------------------------------------------- checks
def _vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty array")
    return arr


def _same_length(*named: tuple[str, np.ndarray]) -> None:
    lengths = {name: len(a) for name, a in named}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"expected arrays of the same length, got {lengths}")


def _binary_labels(y: Any) -> np.ndarray:
    arr = _vector(y, "y")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.number):
        bad = ~np.isin(arr, (0, 1))
        if not bad.any():
            return arr.astype(np.int64)
        got = f"values such as {arr[bad][:3].tolist()}"
    else:
        got = f"dtype {arr.dtype}"
    raise ValueError(f"y: expected binary labels 0/1, got {got}")


def _probability(p: Any, name: str = "p") -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty array")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite probabilities, got NaN or inf")
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name}: expected probabilities in [0, 1], got range [{arr.min()}, {arr.max()}]")
    return arr


def _scores(p: Any) -> np.ndarray:
    arr = _vector(p, "p").astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("p: expected finite scores, got NaN or inf")
    return arr


def _class_probs(y: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(y, P)``: integer labels (N,) and a probability matrix (N, C), validated."""
    labels = _vector(y, "y")
    if not np.issubdtype(labels.dtype, np.integer):
        if labels.dtype == bool:
            labels = labels.astype(np.int64)
        else:
            raise ValueError(f"y: expected integer class indices, got dtype {labels.dtype}")
    matrix = _probability(probs, "probs")
    if matrix.ndim == 1:
        matrix = np.stack([1.0 - matrix, matrix], axis=1)  # (N,) P(y=1) -> (N, 2)
    if matrix.ndim != 2:
        raise ValueError(f"probs: expected shape (N, C) or (N,), got {matrix.shape}")
    _same_length(("y", labels), ("probs", matrix))
    n_classes = matrix.shape[1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"y: expected class indices in 0..{n_classes - 1}, "
                         f"got range {labels.min()}..{labels.max()}")
    sums = matrix.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > ROW_SUM_TOL:
        raise ValueError(f"probs: expected rows summing to 1, got {sums[worst]:.6f} in row {worst}")
    return labels.astype(np.int64), matrix


# ------------------------------------------------------------------------------------------------ CTR
def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])  # first position of each tie group
    ends = np.r_[starts[1:], len(x)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]
    return ranks


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve, the Mann-Whitney statistic with tied scores counted one half.

    ``AUC = (sum_{i: y_i=1} rank(p_i) - n1 (n1 + 1) / 2) / (n1 n0)`` with average ranks for ties.
    ``p`` may be any real score (not only a probability). One class only: ``nan`` and a warning.
    """
    labels, scores = _binary_labels(y), _scores(p)
    _same_length(("y", labels), ("p", scores))
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return _undefined(f"auc: y has one class only ({n1} positives, {n0} negatives); AUC is undefined")
    ranks = _average_ranks(scores)
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def logloss(y: Any, p: Any, eps: float = 1e-15) -> float:
    """Binary cross-entropy ``-1/N sum [y log p + (1 - y) log(1 - p)]``, ``p`` clipped to [eps, 1 - eps]."""
    labels, probs = _binary_labels(y), _probability(_vector(p, "p"))
    _same_length(("y", labels), ("p", probs))
    probs = np.clip(probs, eps, 1.0 - eps)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log1p(-probs)))


def gauc(users: Any, y: Any, p: Any) -> float:
    """Group AUC: per-user AUC averaged with weights = the user's number of impressions.

    ``gAUC = sum_u n_u AUC_u / sum_u n_u`` over users ``u`` whose impressions contain both a positive
    and a negative (AUC is undefined for the others, so they are skipped, their impressions included).
    ``users`` (N,) holds any hashable ids, one per impression. No user with both classes: ``nan`` and
    a warning. Vectorised: one sort, no loop over users.
    """
    uid, labels, scores = _vector(users, "users"), _binary_labels(y), _scores(p)
    _same_length(("users", uid), ("y", labels), ("p", scores))
    _, codes = np.unique(uid, return_inverse=True)
    codes = codes.ravel()
    order = np.lexsort((scores, codes))  # by user, then by score
    c, s, lab = codes[order], scores[order], labels[order]
    new_tie = np.r_[True, (c[1:] != c[:-1]) | (s[1:] != s[:-1])]
    starts = np.flatnonzero(new_tie)
    ends = np.r_[starts[1:], len(c)]
    avg_pos = (starts + 1 + ends) / 2.0  # average 1-based position of each tie group in the sorted array
    rank_global = np.repeat(avg_pos, ends - starts)
    user_start = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])  # 0-based first position of each user
    rank = rank_global - np.repeat(user_start, np.diff(np.r_[user_start, len(c)]))  # rank within user
    n = np.bincount(c).astype(np.float64)
    n1 = np.bincount(c, weights=lab).astype(np.float64)
    n0 = n - n1
    pos_rank_sum = np.bincount(c, weights=rank * lab)
    valid = (n1 > 0) & (n0 > 0)
    if not valid.any():
        return _undefined("gauc: no user has both a positive and a negative impression; gAUC is undefined")
    per_user = (pos_rank_sum[valid] - n1[valid] * (n1[valid] + 1) / 2.0) / (n1[valid] * n0[valid])
    return float(np.sum(n[valid] * per_user) / np.sum(n[valid]))


# ----------------------------------------------------------------------------------------------- top-K
Ranked = Sequence[Sequence[Hashable]]
"""Per user, the recommended items best first."""
Relevant = Sequence[Union[Collection[Hashable], Mapping[Hashable, float]]]
"""Per user, the relevant items (a set), or item -> gain for graded relevance."""


def _topk_inputs(ranked: Ranked, relevant: Relevant, k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if len(ranked) == 0:
        raise ValueError("ranked: expected one list per user, got none")
    if len(ranked) != len(relevant):
        raise ValueError(f"expected one relevant set per ranked list, "
                         f"got {len(ranked)} lists and {len(relevant)} sets")
    for u, items in enumerate(ranked):
        if len(set(items)) != len(items):
            raise ValueError(f"ranked[{u}]: expected distinct items, got a repeated item")


def recall_at_k(ranked: Ranked, relevant: Relevant, k: int) -> float:
    """Mean over users of ``|top_k(ranked_u) ∩ relevant_u| / |relevant_u|``.

    Input, aligned by position (user ``u`` is index ``u`` of both):

    - ``ranked[u]``: the items recommended to user ``u``, best first (any length; only the first ``k``
      count; items must be distinct);
    - ``relevant[u]``: the user's relevant (held-out) items, a set or any collection (a mapping
      item -> gain also works: its keys are the relevant items).

    Users with no relevant item are skipped; if no user has one: ``nan`` and a warning. The
    denominator is ``|relevant_u|`` (not ``min(k, |relevant_u|)``), as in RecBole.
    """
    _topk_inputs(ranked, relevant, k)
    scores = [len(set(items[:k]) & set(rel)) / len(rel) for items, rel in zip(ranked, relevant) if len(rel)]
    if not scores:
        return _undefined("recall_at_k: no user has a relevant item; Recall@K is undefined")
    return float(np.mean(scores))


def ndcg_at_k(ranked: Ranked, relevant: Relevant, k: int) -> float:
    """Mean over users of ``DCG@k / IDCG@k`` with ``DCG@k = sum_{i=1..k} gain(item_i) / log2(i + 1)``.

    Same input as :func:`recall_at_k`. Binary relevance (a set: gain 1 for relevant items, 0 otherwise)
    or graded relevance (a mapping item -> gain >= 0). ``IDCG@k`` is the DCG of the best possible
    top-k (the ``k`` largest gains in decreasing order). Users with no item of positive gain are
    skipped; if no user has one: ``nan`` and a warning.
    """
    _topk_inputs(ranked, relevant, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # (k,) 1/log2(i+1) for i = 1..k
    scores = []
    for u, (items, rel) in enumerate(zip(ranked, relevant)):
        gains = dict(rel) if isinstance(rel, Mapping) else dict.fromkeys(rel, 1.0)
        if any(not np.isfinite(g) or g < 0 for g in gains.values()):
            raise ValueError(f"relevant[{u}]: expected finite gains >= 0, got {list(gains.values())}")
        ideal = np.sort(np.fromiter(gains.values(), dtype=np.float64, count=len(gains)))[::-1][:k]
        if not len(ideal) or ideal[0] <= 0:
            continue
        got = np.array([gains.get(item, 0.0) for item in items[:k]], dtype=np.float64)
        scores.append(float(got @ discount[: len(got)]) / float(ideal @ discount[: len(ideal)]))
    if not scores:
        return _undefined("ndcg_at_k: no user has a relevant item; NDCG@K is undefined")
    return float(np.mean(scores))


# ------------------------------------------------------------------------------------- classification
def _label_pair(y: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    truth, pred = _vector(y, "y"), _vector(y_pred, "y_pred")
    _same_length(("y", truth), ("y_pred", pred))
    return truth, pred


def accuracy(y: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the truth. Labels may be ints or strings."""
    truth, pred = _label_pair(y, y_pred)
    return float(np.mean(truth == pred))


def _f1_per_class(y: Any, y_pred: Any, labels: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """``(f1, support)`` per class, ``f1_c = 2 TP / (2 TP + FP + FN)`` (0 when the class never occurs)."""
    truth, pred = _label_pair(y, y_pred)
    classes = np.unique(np.concatenate([truth, pred])) if labels is None else np.asarray(labels)
    if classes.size == 0:
        raise ValueError("labels: expected at least one class, got none")
    tp = np.array([np.sum((truth == c) & (pred == c)) for c in classes], dtype=np.float64)
    support = np.array([np.sum(truth == c) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(pred == c) for c in classes], dtype=np.float64)
    denom = support + predicted  # = 2 TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1, support


def macro_f1(y: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: every label in ``y`` or ``y_pred``).

    A class in ``labels`` that appears in neither array scores F1 = 0 (scikit-learn's
    ``zero_division=0``), so pass ``labels`` to fix the class set across runs.
    """
    f1, _ = _f1_per_class(y, y_pred, labels)
    return float(f1.mean())


def weighted_f1(y: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float:
    """Per-class F1 averaged with weights = the class's support (its count in ``y``)."""
    f1, support = _f1_per_class(y, y_pred, labels)
    if support.sum() == 0:
        raise ValueError("labels: expected at least one of them to occur in y, got none")
    return float(np.sum(f1 * support) / support.sum())


def nll(y: Any, probs: Any, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood ``-1/N sum_i log P[i, y_i]`` (P clipped below at ``eps``)."""
    labels, matrix = _class_probs(y, probs)
    picked = matrix[np.arange(len(labels)), labels]  # (N,)
    return float(-np.mean(np.log(np.clip(picked, eps, 1.0))))


def reliability_bins(y: Any, probs: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Top-label reliability table over ``n_bins`` equal-width confidence bins ``(b/n, (b+1)/n]``.

    Returns arrays of shape (n_bins,): ``lower``, ``upper`` (bin edges), ``count``, ``confidence``
    (mean max-probability in the bin) and ``accuracy`` (fraction of argmax = y), both ``nan`` in
    empty bins.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins: expected a positive integer, got {n_bins!r}")
    labels, matrix = _class_probs(y, probs)
    conf = matrix.max(axis=1)  # (N,)
    correct = (matrix.argmax(axis=1) == labels).astype(np.float64)  # (N,)
    which = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)  # (N,) bin of each sample
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=conf, minlength=n_bins) / count
        acc = np.bincount(which, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return {"lower": edges[:-1], "upper": edges[1:], "count": count, "confidence": confidence,
            "accuracy": acc}


def ece(y: Any, probs: Any, n_bins: int = 15) -> float:
    """Expected calibration error (top label): ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|``.

    Bins are :func:`reliability_bins` (equal width in confidence, 15 by default as in Guo et al. 2017).
    """
    table = reliability_bins(y, probs, n_bins)
    used = table["count"] > 0
    gaps = np.abs(table["accuracy"][used] - table["confidence"][used])
    return float(np.sum(table["count"][used] * gaps) / table["count"].sum())


def brier(y: Any, probs: Any) -> float:
    """Brier score. Binary ``p`` (N,): ``mean (p_i - y_i)^2`` (= scikit-learn's ``brier_score_loss``).

    Multi-class ``probs`` (N, C): ``mean_i sum_c (P[i, c] - 1[y_i = c])^2`` (Brier's original form,
    between 0 and 2; for C = 2 it is twice the binary value).
    """
    raw = np.asarray(probs)
    if raw.ndim == 1:
        labels, p = _binary_labels(y), _probability(_vector(probs, "probs"), "probs")
        _same_length(("y", labels), ("probs", p))
        return float(np.mean((p - labels) ** 2))
    labels, matrix = _class_probs(y, probs)
    onehot = np.eye(matrix.shape[1])[labels]  # (N, C)
    return float(np.mean(np.sum((matrix - onehot) ** 2, axis=1)))
