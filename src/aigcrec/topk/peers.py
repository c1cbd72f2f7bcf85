"""The peers of the top-K benchmark behind one small interface, each with its defaults and a small grid.

A peer is ``fit(data, params, seed) -> scorer`` where ``data`` is a ``TrainData`` (binary user x item
matrix of the training positives over the whole catalog, plus the items' e_SEM vectors) and the scorer
maps user rows to scores over every catalog item ``(u, n)``. Models that read no content cannot score
an item without training positives; such items get ``UNSEEN`` (ranked after every other, never masked).

- ``cornac_bpr``, ``cornac_vbpr``: Cornac 3.0.1 (VBPR fed the feature store's e_SEM; cold items scored
  from their vectors with the learned E and beta', as VBPR's own equation does).
- ``implicit_als``, ``implicit_bpr``, ``implicit_itemknn``: implicit 0.7.3 (item-kNN: ``CosineRecommender``).
- ``ease``: our implementation of the closed form of EASE^R (Steck, WWW 2019).
- ``popularity``: training positives per item.
- ``recbole_lightgcn``: RecBole 1.2.1's LightGCN (He et al., SIGIR 2020), trained by RecBole's own trainer in
  its own environment (``make bench-recbole``; ``aigcrec/topk/recbole_worker.py`` in a subprocess), since
  its pins (numpy < 2, scipy < 1.12) cannot sit beside aigcrec's. Run when that environment exists
  (``$AIGCREC_RECBOLE_PYTHON`` names another Python), else listed as not run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

UNSEEN = -1e30
RECBOLE_PYTHON_ENV = "AIGCREC_RECBOLE_PYTHON"
RECBOLE_VENV = Path(".venv-recbole")  # what `make bench-recbole` makes, relative to the working directory
RECBOLE_WORKER = Path(__file__).with_name("recbole_worker.py")
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class TrainData:
    """Training positives ``x (users, items)`` (csr, 0/1) and ``e_sem (items, d)`` rows in catalog order."""

    x: sp.csr_matrix
    e_sem: np.ndarray

    @property
    def seen_items(self) -> np.ndarray:
        return np.asarray(self.x.sum(axis=0)).ravel() > 0


def _unseen_last(scorer: Scorer, data: TrainData) -> Scorer:
    unseen = ~data.seen_items

    def score(users: np.ndarray) -> np.ndarray:
        s = np.array(scorer(users), dtype=np.float64)  # a writable copy
        s[:, unseen] = UNSEEN
        return s
    return score


def unseen_last_constant(data: TrainData) -> Scorer:
    """Every item with training positives scored 0, the others ``UNSEEN``: the cold-item ranking of any model
    that reads no content (its scores of items without training positives are ``UNSEEN`` whatever it learned)."""
    n_items = data.seen_items.shape[0]
    return _unseen_last(lambda rows: np.zeros((len(rows), n_items)), data)


def _cornac_train_set(data: TrainData, seed: int):
    import cornac  # lazy: a peer library of the dev/bench extras

    coo = data.x.tocoo()
    triples = [(str(u), str(i), 1.0) for u, i in zip(coo.row, coo.col)]
    ts = cornac.data.Dataset.from_uir(triples, seed=seed)
    users = np.array([ts.uid_map.get(str(u), -1) for u in range(data.x.shape[0])])
    items = np.array([ts.iid_map.get(str(i), -1) for i in range(data.x.shape[1])])
    return ts, users, items


def fit_cornac_bpr(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    from cornac.models import BPR  # lazy: a peer library of the dev/bench extras

    ts, users, items = _cornac_train_set(data, seed)
    model = BPR(**params, seed=seed, verbose=False).fit(ts)
    known = items >= 0

    def score(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), data.x.shape[1]))
        for r, u in enumerate(rows):
            if users[u] >= 0:
                out[r, known] = model.score(int(users[u]))[items[known]]
        return out
    return _unseen_last(score, data)


def fit_cornac_vbpr(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    """Score = beta_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta'^T f_i; items Cornac never saw have
    beta_i = 0, gamma_i = 0 and are scored from their vector alone."""

    from cornac.data import ImageModality  # lazy: a peer library of the dev/bench extras
    from cornac.models import VBPR  # lazy: a peer library of the dev/bench extras

    ts, users, items = _cornac_train_set(data, seed)
    ids = [str(i) for i in range(data.x.shape[1])]
    image = ImageModality(features=data.e_sem.astype(np.float32), ids=ids, normalized=True)
    image.build(id_map=ts.iid_map)
    ts.add_modalities(item_image=image)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread, as the ranker trains (TrainConfig.threads) and the other peers run
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # VBPR prints "Optimization finished!"
            model = VBPR(**params, seed=seed, verbose=False).fit(ts)
    finally:
        torch.set_num_threads(threads)
    feats = data.e_sem.astype(np.float64)
    theta_i = feats @ model.emb_matrix  # (n, k2)
    vis_bias = (feats @ model.beta_prime).ravel()  # (n,)
    known = items >= 0
    gamma_i = np.zeros((len(items), model.k))
    gamma_i[known] = model.gamma_item[items[known]]
    beta_i = np.zeros(len(items))
    beta_i[known] = model.beta_item[items[known]]

    def score(rows: np.ndarray) -> np.ndarray:
        u = users[rows]
        gu = np.where((u >= 0)[:, None], model.gamma_user[np.maximum(u, 0)], 0.0)
        tu = np.where((u >= 0)[:, None], model.theta_user[np.maximum(u, 0)], 0.0)
        return beta_i[None, :] + gu @ gamma_i.T + tu @ theta_i.T + vis_bias[None, :]
    return score


def _implicit_factors(model) -> tuple[np.ndarray, np.ndarray]:
    uf, itf = model.user_factors, model.item_factors
    to_np = getattr(uf, "to_numpy", None)  # GPU models keep device arrays
    return (np.asarray(uf if to_np is None else uf.to_numpy()),
            np.asarray(itf if to_np is None else itf.to_numpy()))


def _fit_implicit(cls_path: str, data: TrainData, params: dict[str, Any], seed: int) -> Scorer:

    module, name = cls_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    with threadpool_limits(1, "blas"):  # implicit warns (and slows) when BLAS runs its own threads
        model = cls(**params, random_state=seed, num_threads=1)
        model.fit(data.x.astype(np.float32), show_progress=False)
    uf, itf = _implicit_factors(model)
    return _unseen_last(lambda rows: uf[rows] @ itf.T, data)


def fit_implicit_als(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    return _fit_implicit("implicit.als.AlternatingLeastSquares", data, params, seed)


def fit_implicit_bpr(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    return _fit_implicit("implicit.bpr.BayesianPersonalizedRanking", data, params, seed)


def fit_implicit_itemknn(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    """Score of item j for user u: sum over u's training items i of sim(i, j) (the K nearest kept per item)."""
    from implicit.nearest_neighbours import CosineRecommender  # lazy: a peer library of the dev/bench extras

    model = CosineRecommender(**params, num_threads=1)
    model.fit(data.x.astype(np.float32), show_progress=False)
    sim = model.similarity.tocsr()  # (n, n)
    return _unseen_last(lambda rows: np.asarray((data.x[rows] @ sim).todense()), data)


def fit_ease(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    """EASE^R closed form (Steck 2019, eq. 8): P = (X^T X + lambda I)^-1, B = I - P diag(1/diag P), diag B = 0.

    Scores X_u B. Our implementation (O(n^3) in the catalog size: fine to ~20k items)."""
    x = data.x.astype(np.float64)
    g = np.asarray((x.T @ x).todense())  # (n, n) item co-occurrence
    g[np.diag_indices_from(g)] += float(params["lambda"])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return _unseen_last(lambda rows: np.asarray(x[rows] @ b), data)


def fit_popularity(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    counts = np.asarray(data.x.sum(axis=0), dtype=np.float64).ravel()
    return _unseen_last(lambda rows: np.broadcast_to(counts, (len(rows), len(counts))), data)


def recbole_python() -> Path | None:
    """The Python of the RecBole environment, ``$AIGCREC_RECBOLE_PYTHON`` or else ``.venv-recbole/bin/python``,
    when that file exists; None otherwise (``recbole_lightgcn`` is then not run)."""
    python = Path(os.environ.get(RECBOLE_PYTHON_ENV) or RECBOLE_VENV / "bin" / "python")
    return python.absolute() if python.is_file() else None


def fit_recbole_lightgcn(data: TrainData, params: dict[str, Any], seed: int) -> Scorer:
    """RecBole's LightGCN on the training positives, in the RecBole environment (``recbole_worker.py``):
    its full-sort scores ``e_u . e_i`` after ``epochs`` epochs of BPR; items without training positives last."""
    python = recbole_python()
    if python is None:
        raise RuntimeError(f"recbole_lightgcn: no RecBole environment (${RECBOLE_PYTHON_ENV} or "
                           f"{RECBOLE_VENV / 'bin' / 'python'} not found); run `make bench-recbole`")
    with tempfile.TemporaryDirectory(prefix="aigcrec-recbole-") as tmp:
        inp, out = Path(tmp) / "in", Path(tmp) / "out"
        inp.mkdir()
        sp.save_npz(inp / "train.npz", data.x.tocsr())
        (inp / "params.json").write_text(json.dumps({**params, "seed": seed}), encoding="utf-8")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        done = subprocess.run([str(python), str(RECBOLE_WORKER), str(inp), str(out)], capture_output=True,
                              text=True, env=env, cwd=tmp)  # cwd: RecBole writes log/ and log_tensorboard/ there
        if done.returncode != 0:
            raise RuntimeError(f"recbole_lightgcn: the RecBole worker failed (exit {done.returncode}):\n"
                               f"{done.stderr[-2000:]}")
        scores = np.load(out / "scores.npy")  # (users, items)
    return _unseen_last(lambda rows: scores[rows], data)


@dataclass(frozen=True)
class Peer:
    fit: Callable[[TrainData, dict[str, Any], int], Scorer]
    grid: list[dict[str, Any]]  # the first entry is the library's documented default
    uses_content: bool = False


# Grids: the default first, then three settings around the values the libraries' examples and the
# literature use on MovieLens-sized data (4 settings each, as the aigcrec served row gets;
# VBPR 2, popularity 1).
PEERS: dict[str, Peer] = {
    "cornac_bpr": Peer(fit_cornac_bpr, [
        {}, {"k": 50, "learning_rate": 0.01, "lambda_reg": 0.01},
        {"k": 50, "learning_rate": 0.05, "lambda_reg": 0.001}, {"k": 100, "max_iter": 200, "learning_rate": 0.01}]),
    # VBPR: two settings only (its 50 epochs of torch steps cost more than all the other peers together here).
    "cornac_vbpr": Peer(fit_cornac_vbpr, [{}, {"k": 25, "k2": 25}], uses_content=True),
    "implicit_als": Peer(fit_implicit_als, [
        {}, {"factors": 64, "regularization": 0.1, "alpha": 10.0},
        {"factors": 32, "regularization": 1.0, "alpha": 5.0}, {"factors": 128, "regularization": 10.0, "alpha": 20.0}]),
    "implicit_bpr": Peer(fit_implicit_bpr, [
        {}, {"factors": 64, "learning_rate": 0.05}, {"factors": 32, "iterations": 300},
        {"factors": 128, "learning_rate": 0.01, "regularization": 0.001, "iterations": 300}]),
    "implicit_itemknn": Peer(fit_implicit_itemknn, [{}, {"K": 50}, {"K": 100}, {"K": 200}]),
    "ease": Peer(fit_ease, [{"lambda": 500.0}, {"lambda": 100.0}, {"lambda": 250.0}, {"lambda": 1000.0}]),
    "popularity": Peer(fit_popularity, [{}]),
    # LightGCN: RecBole's defaults (64 dims, 2 layers, lr 1e-3, 300 epochs) and two shorter, faster-learning
    # runs (on MovieLens-100K here the default took 878 s a fit at load ~10; benchmarks/results/topk-movielens-peers).
    "recbole_lightgcn": Peer(fit_recbole_lightgcn, [
        {}, {"epochs": 100, "learning_rate": 0.005}, {"epochs": 100, "learning_rate": 0.005, "n_layers": 3}]),
}
OPTIONAL_PEERS = {"recbole_lightgcn": recbole_python}
"""Peers that need an environment of their own: run by ``--peers`` only where it is found."""
