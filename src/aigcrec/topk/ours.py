"""The three aigcrec rows of the top-K benchmark, all from one trained ranker per (task, seed):

- ``aigcrec_served``: ``aigcrec.service.pipeline.RecommendPipeline.recommend``, the code ``/v1/recommend``
  runs (FAISS retrieval with the two-tower model ``aigcrec build`` trains, blended with the other sources;
  the UMAIR-FPS ranker; the diversity re-rank), in-process, with the service's configuration and model
  runtime. The two-tower is trained on the task's training positives (``TrainedRetriever``). The pipeline learns the training rows as the service would from its
  event log (positive -> ``bookmark``, else ``impression``); the rows masked but not fit on enter as
  impressions (seen, excluded, never a positive).
- ``aigcrec_retrieval``: the same pipeline's candidate list (``RecommendPipeline.candidates``), in its order.
- ``aigcrec_ranker_all``: the same ranker scoring every catalog item (the ceiling of re-ranking any
  candidate set), with the same user history as the pipeline.

The benchmark measures the service's request path: ``aigcrec.topk`` sits above ``ranking`` and ``service``
(it composes both, as the service composes the stages); neither imports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.retrieval.collab import ItemItemModel
from aigcrec.retrieval.data import catalog_retrieval_data, restricted
from aigcrec.retrieval.trainer import train_two_tower
from aigcrec.service.pipeline import RecommendPipeline
from aigcrec.topk.evaluate import DEEP, top_k
from aigcrec.topk.protocol import Task

OURS = ("aigcrec_served", "aigcrec_retrieval", "aigcrec_ranker_all")
# The served row's validation grid (4 settings, as each peer gets): the service's defaults first (the
# item-item source in the candidate pool, the ranker's order), the two-tower's rank fused into the ranker's
# score (service.retrieval_weight 0.9, the previous round's best), and the item-item and two-tower ranks
# fused 0.8 / 0.2 (the fusion benchmarks/topk_collab_blend.py chose on validation, seed 0) over the
# default 100 and over 300 candidates (a ranker share of 0.1 or 0.2 scored lower on validation:
# benchmarks/results/topk-served-quick-movielens-collab). The ranker keeps the configured training settings.
SERVED_GRID: list[dict[str, Any]] = [
    {}, {"diversity": 0.0}, {"retrieval_weight": 0.9}, {"retrieval_weight": 0.2, "collab_weight": 0.8},
    {"retrieval_weight": 0.2, "collab_weight": 0.8, "candidates": 300}]
# {"diversity": 0.0}: on the default world (seed 0) the diversity re-rank cost the served list a third of its
# validation NDCG@10 (0.0151 vs 0.0225 without; benchmarks/results/topk-served-quick-world/).


@dataclass
class TopKCatalog:
    """The benchmark's catalog: item ids, serving metadata and content vectors (name -> (n, d)), one order."""

    item_ids: list[str]
    metas: list[dict[str, Any]]
    vectors: dict[str, np.ndarray]


def serving_config(base, params: Mapping[str, Any]):
    """``ServiceConfig`` with a grid setting applied (``candidates`` -> retrieval.candidates; ``collab_share``
    -> the item-item source's share in every intent of retrieval.blend; the rest, e.g. ``diversity``,
    ``retrieval_weight``, ``collab_weight``, as named), validated as the service validates its config."""
    update = dict(params)
    rupdate: dict[str, Any] = {}
    if "candidates" in update:
        rupdate["candidates"] = int(update.pop("candidates"))
    if "collab_share" in update:
        share = float(update.pop("collab_share"))
        rupdate["blend"] = {k: v.model_copy(update={"collab": share}) for k, v in base.retrieval.blend.items()}
    retrieval = base.retrieval.model_copy(update=rupdate)
    return type(base).model_validate({**base.model_dump(), **update, "retrieval": retrieval.model_dump()})


def events_of(frame: pd.DataFrame, fit_rows: np.ndarray, seen_rows: np.ndarray) -> list[dict[str, Any]]:
    """Service feedback events of ``fit_rows`` (bookmark / impression by label) and ``seen_rows``
    (impressions), in time order."""
    rows = np.r_[fit_rows, seen_rows].astype(np.int64)
    fit = np.r_[np.ones(len(fit_rows), bool), np.zeros(len(seen_rows), bool)]
    sub = frame.iloc[rows]
    ts = pd.to_numeric(sub["timestamp"]).to_numpy(np.float64)
    order = np.argsort(ts, kind="stable")
    labels = sub["label"].to_numpy()
    users, items = sub["user_id"].astype(str).to_numpy(), sub["item_id"].astype(str).to_numpy()
    return [{"user_id": users[j], "item_id": items[j], "ts": float(ts[j]),
             "type": "bookmark" if fit[j] and labels[j] == 1 else "impression"} for j in order]


class TrainedRanker:
    """The ranker trained on a task's rows, as a ``RankerBundle`` in the service's runtime."""

    def __init__(self, data, task: Task, variant: str, ranking_cfg, service_cfg, seed: int) -> None:
        t0 = time.perf_counter()
        train, val = early_stopping_rows(data.frame, task)
        prep = prepare(data, {"train": train, "val": val, "test": task.test}, ranking_cfg.model.history_len)
        result = run_variant(prep, variant, ranking_cfg.model, ranking_cfg.train, seed)
        self.train_s = time.perf_counter() - t0
        self.ctr = result.metrics  # AUC etc. on the task's test rows (impressions)
        bundle = RankerBundle.from_training(variant, result.model, data.frame.iloc[task.train])
        self.bundle = bundle.use_onnx(service_cfg.torch_threads) if service_cfg.model_runtime == "onnx" else bundle


def early_stopping_rows(frame: pd.DataFrame, task: Task, share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, the rows the ranker stops early on): the task's own when it has validation rows; a
    catalog whose users have too few positives for a validation period has none, and then the latest
    ``share`` of the training rows (at least one) are held out of the ranker's training to stop on."""
    if len(task.val) or len(task.train) < 2:
        return task.train, task.val
    when = pd.to_numeric(frame["timestamp"].iloc[task.train]).to_numpy(np.float64)
    order = task.train[np.lexsort((task.train, when))]
    n_val = max(1, int(round(share * len(order))))
    return np.sort(order[:-n_val]), np.sort(order[-n_val:])


class TrainedRetriever:
    """The retrieval models fit on a task's training positives, as ``aigcrec build`` fits them on a
    catalog's: the two-tower (``catalog_retrieval_data`` of the layout, then ``train_two_tower``; ``model``,
    None when disabled) and the item-item model (``ItemItemModel.fit`` over ``item_ids``; ``collab``, None
    when disabled)."""

    def __init__(self, data, dataset: str, data_dir, task: Task, retrieval_cfg, seed: int,
                 item_ids: Sequence[str] | None = None) -> None:
        t0 = time.perf_counter()
        self.model = None
        self.collab = None
        train = data.frame.iloc[task.train]
        if retrieval_cfg.enabled:
            layout = dataset if dataset in ("movielens", "world") else "catalog"
            rdata = restricted(catalog_retrieval_data(data_dir, layout, data.vectors, train), train)
            self.model = train_two_tower(rdata, retrieval_cfg.two_tower, seed)
        self.two_tower_s = time.perf_counter() - t0
        if retrieval_cfg.collab.enabled and item_ids is not None:
            self.collab = ItemItemModel.fit(train[train["label"] == 1], item_ids, retrieval_cfg.collab,
                                            shown=train["item_id"].astype(str).unique())
        self.train_s = time.perf_counter() - t0


def build_pipeline(catalog: TopKCatalog, ranker: TrainedRanker, service_cfg, frame: pd.DataFrame, task: Task, seed: int,
                   retriever: TrainedRetriever | None = None):
    """A ``RecommendPipeline`` over the catalog that has learned the task's rows; returns (pipeline, build s)."""
    t0 = time.perf_counter()
    pipe = RecommendPipeline.build(service_cfg, catalog.metas, catalog.vectors, ranker.bundle, seed=seed,
                                   retriever=None if retriever is None else retriever.model,
                                   collab=None if retriever is None else retriever.collab)
    pipe.observe(events_of(frame, task.train, task.seen_only))
    return pipe, time.perf_counter() - t0


def served_lists(pipe, users: Sequence[str], k: int = 20) -> tuple[list[list[str]], float]:
    """``recommend(user, k)`` for every user: (item ids, ms per user)."""
    t0 = time.perf_counter()
    lists = [[it.item_id for it in pipe.recommend(u, k).items] for u in users]
    return lists, (time.perf_counter() - t0) * 1e3 / max(1, len(users))


def retrieval_lists(pipe, users: Sequence[str], n: int = DEEP) -> tuple[list[list[str]], float]:
    """The pipeline's first ``n`` candidates per user (its ``recommend`` excludes the same seen items)."""
    t0 = time.perf_counter()
    out = []
    for u in users:
        rows, _, _ = pipe.candidates(u, n, pipe.users.seen_rows(u))
        out.append([pipe.catalog.item_ids[r] for r in rows])
    return out, (time.perf_counter() - t0) * 1e3 / max(1, len(users))


def ranker_all_lists(pipe, users: Sequence[str], n: int = DEEP) -> tuple[list[list[str]], float]:
    """The ranker's top ``n`` over every catalog item the user has not seen, with the pipeline's history."""
    cat = pipe.catalog
    ids = list(cat.item_ids)
    all_rows = np.arange(len(ids))
    feats = cat.features_of(all_rows)
    out = []
    t0 = time.perf_counter()
    for u in users:
        hist = np.asarray(pipe.users.history(u), dtype=np.int64)
        scores, _, _ = pipe.ranker.score(u, ids, None, feats, history=[ids[r] for r in hist],
                                         history_features=cat.features_of(hist))
        best = top_k(np.asarray(scores, np.float64)[None, :], [np.fromiter(pipe.users.seen_rows(u), np.int64)], n)[0]
        out.append([ids[r] for r in best if r >= 0])
    return out, (time.perf_counter() - t0) * 1e3 / max(1, len(users))
