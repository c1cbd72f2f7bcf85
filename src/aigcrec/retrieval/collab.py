"""Item-item collaborative candidate model: EASE^R (Steck, "Embarrassingly Shallow Autoencoders for Sparse
Data", WWW 2019), computed in closed form from the training positives, stored with the models and queried
at request time from the user's live positives (so feedback posted to the service changes the list).

    G = X^T X + lambda I          X (users, n) binary training positives, G (n, n)
    P = G^-1
    B = I - P diag(1 / diag P)    B (n, n), diag B = 0 (eq. 8 of the paper)
    s_u = x_u B                   x_u (n,) the user's live positives (optionally decayed by age), s_u (n,)

Storage: B as a sparse matrix that keeps, per row ``i`` (the items ``i`` points to), the ``neighbours``
entries of largest ``|B_ij|``; with ``neighbours >= n - 1`` that is the exact B. The inversion costs
O(n^3) time and n^2 float64 memory: catalogs above ``max_items`` are refused (``ValueError`` naming the
size and the setting), and the build step reports the source as skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aigcrec.retrieval.config import CollabConfig
from aigcrec.saved import read_config, write_config

FORMAT = 1
WEIGHTS_NAME = "item_item.npz"


def ease_weights(x: sp.spmatrix | np.ndarray, lam: float) -> np.ndarray:
    """EASE^R's ``B (n, n)`` from a binary ``x (users, n)`` (float64, zero diagonal)."""
    g = x.T @ x
    g = np.asarray(g.todense() if sp.issparse(g) else g, dtype=np.float64)  # (n, n)
    g[np.diag_indices_from(g)] += float(lam)
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def sparsify(b: np.ndarray, neighbours: int) -> sp.csr_matrix:
    """``b`` keeping, per row, the ``neighbours`` entries of largest absolute value (all when fewer)."""
    n = b.shape[0]
    k = min(int(neighbours), n)
    if k >= n:
        return sp.csr_matrix(b.astype(np.float32))
    cols = np.argpartition(-np.abs(b), k - 1, axis=1)[:, :k]  # (n, k)
    vals = np.take_along_axis(b, cols, 1).astype(np.float32)
    rows = np.repeat(np.arange(n), k)
    return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=b.shape)


class ItemItemModel:
    """EASE^R weights over ``item_ids`` (sparse rows: item -> the items it points to)."""

    def __init__(self, item_ids: Sequence[str], weights: sp.csr_matrix, config: CollabConfig,
                 figures: Optional[dict] = None, known: Optional[np.ndarray] = None) -> None:
        self.item_ids = [str(i) for i in item_ids]
        self.col_of = {i: c for c, i in enumerate(self.item_ids)}
        self.weights = weights.tocsr()  # (n, n)
        # (n,) whether the model has evidence about the item: shown in its training data (``known``, liked or
        # not: a shown item nobody liked is rightly scored low), or, without it, some weight points to it (a
        # column of zeros has no training positive; sparsify keeps explicit zeros, which do not count)
        into = self.weights.indices[self.weights.data != 0]
        pointed = np.bincount(into, minlength=len(self.item_ids))[:len(self.item_ids)] > 0
        self.known = pointed if known is None else (np.asarray(known, bool).reshape(-1) | pointed)
        if len(self.known) != len(self.item_ids):
            raise ValueError(f"item-item model: known has {len(self.known)} entries for {len(self.item_ids)} items")
        self.config = config
        self.figures = dict(figures or {})

    @property
    def history_len(self) -> int:
        return int(self.config.history_len)

    @classmethod
    def fit(cls, positives: pd.DataFrame, item_ids: Iterable[str], config: CollabConfig,
            shown: Optional[Iterable[str]] = None) -> "ItemItemModel":
        """From ``positives`` (columns user_id, item_id: one row per positive; repeats count once) over the
        catalog ``item_ids`` (positives naming other items are ignored); ``shown``: the items with any row in
        the training interactions (``known``; None: the liked ones)."""
        items = [str(i) for i in dict.fromkeys(str(i) for i in item_ids)]
        n = len(items)
        if n > config.max_items:
            raise ValueError(f"item-item (EASE) model: {n} items > retrieval.collab.max_items {config.max_items} "
                             f"(the closed form inverts an n x n matrix: O(n^3) time, n^2 float64 memory)")
        col = {i: c for c, i in enumerate(items)}
        it = positives["item_id"].astype(str).map(col)
        keep = it.notna().to_numpy()
        users = positives["user_id"].astype(str).to_numpy()[keep]
        cols = it.to_numpy()[keep].astype(np.int64)
        codes, uniq = pd.factorize(users)
        x = sp.csr_matrix((np.ones(len(cols)), (codes, cols)), shape=(len(uniq), n))
        x.data[:] = 1.0
        b = sparsify(ease_weights(x, config.lam), config.neighbours)
        figures = {"items": n, "users": int(len(uniq)), "positives": int(x.nnz), "nonzeros": int(b.nnz),
                   "exact": bool(config.neighbours >= n - 1)}
        seen = None if shown is None else {str(i) for i in shown}
        known = None if seen is None else np.array([i in seen for i in items], bool)
        return cls(items, b, config, figures, known)

    def query(self, history_ids: Sequence[str]) -> np.ndarray:
        """The user's row ``x_u (n,)``: 1 per live positive, times ``0.5 ** (age / half_life)`` with the age
        counted in positives from the newest (0: no decay); unknown items are skipped."""
        x = np.zeros(len(self.item_ids))
        h = [self.col_of[i] for i in history_ids if i in self.col_of][-self.history_len:]
        if not h:
            return x
        half = self.config.half_life
        w = 0.5 ** (np.arange(len(h))[::-1] / half) if half > 0 else np.ones(len(h))
        np.maximum.at(x, np.asarray(h, np.int64), w)
        return x

    def scores(self, history_ids: Sequence[str]) -> np.ndarray:
        """``s_u = x_u B`` over ``item_ids`` ``(n,)`` (all 0 without a known positive)."""
        x = self.query(history_ids)
        return np.asarray(self.weights.T @ x).ravel()

    # -- persistence --------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_config(path, "item_item", FORMAT, {"config": self.config.model_dump(), "figures": self.figures},
                     indent=2)
        w = self.weights
        np.savez(path / WEIGHTS_NAME, data=w.data, indices=w.indices, indptr=w.indptr,
                 shape=np.asarray(w.shape), item_ids=np.asarray(self.item_ids, dtype=object).astype(str),
                 known=self.known)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ItemItemModel":
        path = Path(path)
        meta, _, _ = read_config(path, "item_item", FORMAT)  # aigcrec build writes one
        z = np.load(path / WEIGHTS_NAME, allow_pickle=False)
        w = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(s) for s in z["shape"]))
        ids = [str(i) for i in z["item_ids"]]
        if w.shape != (len(ids), len(ids)):
            raise ValueError(f"{path / WEIGHTS_NAME}: weights {w.shape} for {len(ids)} item ids")
        known = z["known"] if "known" in z.files else None  # saved before it existed: from the weights
        return cls(ids, w, CollabConfig.model_validate(meta["config"]), meta.get("figures"), known)
