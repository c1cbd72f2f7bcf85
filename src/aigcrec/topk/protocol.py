"""The top-K protocol: which interactions train a model, which positives it is judged on, what is masked.

Positives are label-1 rows (rating >= 4 on MovieLens, bookmarks on a world). Per user, the positives in
time order ``p_1 .. p_n`` are cut into train / validation / test: the last ``round(0.2 n)`` are test, the
``round(0.1 n)`` before them validation (a user keeps at least one training positive). Every row of the
user (positive or not) before their first validation positive is training, rows from it to the first test
positive validation, the rest test. Models are fit on the training rows only (the ranker stops early on the
validation rows' AUC). A model ranks every catalog item the user has not interacted with before the
judged period: at validation the training items are masked, at test the training and validation items
(as RecBole does). Relevant = the period's positives not masked.

Cold-item variant (``aigcrec.ranking.data.cold_item_split``): a seeded 10 % of the items and all their
rows are held out; the other rows are split per user 90/10 in time into train and validation. Every
item is ranked (train and validation items of the user masked); relevant = the user's positives on the
held-out items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aigcrec.ranking.data import cold_item_split

TEST_SHARE = 0.2
VAL_SHARE = 0.1


def min_judged_positives(test_share: float = TEST_SHARE) -> int:
    """The fewest positives a user needs for ``temporal_split`` to give them a test positive."""
    return next(n for n in range(2, 1000) if min(int(round(test_share * n)), n - 1) >= 1)


def temporal_split(frame: pd.DataFrame, test_share: float = TEST_SHARE, val_share: float = VAL_SHARE
                   ) -> dict[str, np.ndarray]:
    """Row positions of ``frame`` (user_id, label, timestamp) in train / val / test, per user in time.

    Users with fewer than 2 positives keep every row in train (nothing to judge them on).
    """
    frame = frame.reset_index(drop=True)
    order = np.lexsort((np.arange(len(frame)), pd.to_numeric(frame["timestamp"]).to_numpy(np.float64),
                        frame["user_id"].astype(str).to_numpy()))
    users = frame["user_id"].astype(str).to_numpy()[order]
    labels = frame["label"].to_numpy()[order]
    part = np.zeros(len(frame), np.int8)  # in `order`: 0 train, 1 val, 2 test
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    for s, e in zip(starts, np.r_[starts[1:], len(users)]):
        pos = np.flatnonzero(labels[s:e] == 1)  # positions of the user's positives, in time order
        n = len(pos)
        n_test = min(int(round(test_share * n)), n - 1)
        n_val = min(int(round(val_share * n)), n - 1 - n_test)
        if n_test > 0:
            part[s + pos[n - n_test]:e] = 2
        if n_val > 0:
            part[s + pos[n - n_test - n_val]:s + (pos[n - n_test] if n_test else e - s)] = 1
    out = np.empty(len(frame), np.int8)
    out[order] = part
    return {"train": np.flatnonzero(out == 0), "val": np.flatnonzero(out == 1), "test": np.flatnonzero(out == 2)}


@dataclass
class Task:
    """One ranking task: the rows a model is fit on, the rows it validates on, and what it is judged on.

    ``known[u]``: items masked for user ``u`` (every item of their rows before the judged period);
    ``seen_only``: the rows masked but not fit on (a model learns only that the user saw those items);
    ``relevant[u]``: the judged positives; ``users``: the judged users, sorted.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    users: list[str]
    known: dict[str, set[str]]
    relevant: dict[str, set[str]]
    seen_only: np.ndarray
    cold_items: np.ndarray | None = None


def _items_by_user(frame: pd.DataFrame, rows: np.ndarray, positives_only: bool = False) -> dict[str, set[str]]:
    sub = frame.iloc[rows]
    if positives_only:
        sub = sub[sub["label"] == 1]
    out: dict[str, set[str]] = {}
    for u, i in zip(sub["user_id"].astype(str), sub["item_id"].astype(str)):
        out.setdefault(u, set()).add(i)
    return out


def _task(name: str, frame: pd.DataFrame, train: np.ndarray, val: np.ndarray, test: np.ndarray,
          masked: np.ndarray, judged: np.ndarray, cold_items: np.ndarray | None = None) -> Task:
    known = _items_by_user(frame, masked)
    relevant = {u: items - known.get(u, set()) for u, items in _items_by_user(frame, judged, True).items()}
    relevant = {u: r for u, r in relevant.items() if r}
    seen_only = np.setdiff1d(masked, train)
    return Task(name, train, val, test, sorted(relevant), known, relevant, seen_only, cold_items)


def make_tasks(frame: pd.DataFrame, cold_fraction: float = 0.1, split_seed: int = 0) -> dict[str, Task]:
    """The three tasks of a run: ``val`` (tuning), ``test`` and ``cold`` (own training rows)."""
    frame = frame.reset_index(drop=True)
    rows = temporal_split(frame)
    tr, va, te = rows["train"], rows["val"], rows["test"]
    tasks = {"val": _task("val", frame, tr, va, te, tr, va),
             "test": _task("test", frame, tr, va, te, np.r_[tr, va], te)}
    cold = cold_item_split(frame, cold_fraction, split_seed)
    ctr, cva, cte = cold["train"], cold["val"], cold["test"]
    tasks["cold"] = _task("cold", frame, ctr, cva, cte, np.r_[ctr, cva], cte, cold["cold_items"])
    return tasks


def describe(cold_fraction: float, split_seed: int) -> dict[str, str]:
    """The protocol in words (written into topk.json)."""
    return {
        "positives": "label 1 (MovieLens: rating >= 4; world: bookmark)",
        "split": f"per user, positives in time order: last {TEST_SHARE:.0%} test, the {VAL_SHARE:.0%} before "
                 "validation (at least one training positive kept); every row of the user before the first "
                 "validation positive trains, rows up to the first test positive validate",
        "fit": "every model is fit on the training rows only; hyper-parameters chosen by validation NDCG@10 "
               "(seed 0; the split does not depend on the seed)",
        "ranking": "full catalog: every item the user has not interacted with before the judged period "
                   "(validation: training items masked; test: training and validation items masked)",
        "relevant": "the judged period's positives that are not masked",
        "metrics": "Recall@10/20, NDCG@10/20 (aigcrec.metrics; denominator |relevant|), MRR@20, catalog "
                   "coverage@10 (distinct items in all top-10 lists / catalog size), Recall@500 for the "
                   "retrieval stage and the ranker over every item",
        "cold": f"{cold_fraction:.0%} of items (split seed {split_seed}) and all their rows held out; the other "
                "rows per user 90/10 in time train/validation; every item ranked, the user's training and "
                "validation items masked; relevant = the user's positives on held-out items; Recall@20, NDCG@20",
    }
