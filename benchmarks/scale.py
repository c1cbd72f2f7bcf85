"""Scale benchmark (issue 24, items 3 and 4): how each cost grows with the catalog and the log.

Synthetic data of the default world's shape, at sizes a decade apart, loopback only and bounded:

- retrieval (10^4, 10^5, 10^6 items): 128-d unit retrieval vectors from a Gaussian mixture (below);
  build time, bytes per item (the serialised index), recall@100 against exact search and single-query
  latency of exact (flat), IVF-Flat (sqrt(n) lists, several nprobe) and HNSW (M 32, several efSearch);
- ranking (10^5, 10^6 impressions; 5 x 10^6 for the tabular DCN-V2): ``umair_fps`` and ``dcnv2`` on a
  synthetic ``RankingData`` with the world's fields and content widths (e_sem 1280, e_sty 736, e_tsem 384,
  a 200-item history, the 12-d affect context); data preparation time (history, spec fit, encoding),
  training time per epoch from a bounded number of batches (extrapolated: epoch = train rows / samples/s)
  and the process's peak memory;
- encoding: images/s of the content encoder on the tiny world, locally and on Ray with 1 and 2 workers
  (``aigcrec.distributed.benchmark.bench_encode``); the cost per image does not depend on the catalog;
- recommend (10^4, 10^5, 10^6 items): ``RecommendPipeline`` in process with the UMAIR-FPS bundle on ONNX
  Runtime (as ``aigcrec serve``), no signals, an open-loop arrival stream at a fixed rate served by
  ``recommend_threads`` threads: p50 / p99 from each request's scheduled arrival to its answer, and the
  service time of sequential requests. The catalog's content blocks are 1/``--width-div`` of the world's
  widths so 10^6 items fit in memory (10^6 x 2,400 float32 = 9.6 GB at full width); one run at 10^4
  items with full widths measures what the width costs.

Mixture: K = 384 components (the world's 8 subjects x 8 styles x 6 palettes), Zipf(0.8) weights, unit
centres; an item is ``unit(mu_k + s_k z)`` with ``z ~ N(0, diag(lambda))``, ``lambda_j ∝ 1/j`` (a decaying
spectrum, as PCA'd embeddings have), ``s_k ~ U(0.8, 1.2) x 0.9``. A query is the pipeline's: the unit mean
of 20 items drawn from one user's 1-3 components.

Each part runs in its own process (``nice``d; its peak memory is its own). Writes ``scale.json``,
``scale.md`` and ``scale.png`` (log-log) under ``--out``, with the slope of each cost on log-log.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/scale.py --out benchmarks/results/scale
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import queue
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aigcrec.service.config import RetrievalConfig

log = logging.getLogger("aigcrec.scale")
RETRIEVAL_DEFAULTS = RetrievalConfig()

DIM = 128
COMPONENTS = 384
WORLD_WIDTHS = {"e_sem": 1280, "e_sty": 736, "e_tsem": 384}
K = 100
QUERY_ITEMS = 20
ROOT = Path(__file__).resolve().parents[1]


# -- synthetic data ------------------------------------------------------------------------------------
class Mixture:
    """The Gaussian mixture of the module docstring, in ``dim`` dimensions."""

    def __init__(self, dim: int = DIM, components: int = COMPONENTS, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.dim, self.components = dim, components
        centres = rng.standard_normal((components, dim)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)  # (K, dim)
        w = 1.0 / np.arange(1, components + 1) ** 0.8
        self.weights = rng.permutation(w / w.sum())  # (K,)
        lam = 1.0 / np.arange(1, dim + 1)
        self.scale = np.sqrt(lam / lam.sum()).astype(np.float32)  # (dim,), E||z||^2 = 1
        self.spread = (0.9 * rng.uniform(0.8, 1.2, components)).astype(np.float32)  # (K,)

    def labels(self, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).choice(self.components, size=n, p=self.weights)

    def sample(self, labels: np.ndarray, seed: int, chunk: int = 100_000) -> np.ndarray:
        """Unit vectors ``(n, dim)`` of items with the given components."""
        rng = np.random.default_rng(seed)
        out = np.empty((len(labels), self.dim), np.float32)
        for s in range(0, len(labels), chunk):
            lab = labels[s : s + chunk]
            z = rng.standard_normal((len(lab), self.dim), dtype=np.float32) * self.scale
            x = self.centres[lab] + self.spread[lab, None] * z
            out[s : s + len(lab)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    def user_queries(self, n: int, seed: int) -> np.ndarray:
        """``(n, dim)`` unit means of ``QUERY_ITEMS`` items from 1-3 components each (a user's history)."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), np.float32)
        for i in range(n):
            comps = rng.choice(self.components, size=rng.integers(1, 4), p=self.weights)
            q = self.sample(rng.choice(comps, size=QUERY_ITEMS), seed=int(rng.integers(1 << 31))).mean(axis=0)
            out[i] = q / np.linalg.norm(q)
        return out


def content_blocks(
    latent: np.ndarray, widths: dict[str, int], seed: int, noise: float = 0.5
) -> dict[str, np.ndarray]:
    """Content blocks ``name -> (n, d)`` sharing the items' latent structure: ``latent R_b + noise``."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, d in widths.items():
        proj = (rng.standard_normal((latent.shape[1], d)) / np.sqrt(latent.shape[1])).astype(np.float32)
        block = np.empty((len(latent), d), np.float32)
        for s in range(0, len(latent), 50_000):
            part = latent[s : s + 50_000] @ proj
            jitter = rng.standard_normal(part.shape, dtype=np.float32) / np.sqrt(d)
            block[s : s + len(part)] = part + noise * jitter
        out[name] = block
    return out


def ranking_data(impressions: int, widths: dict[str, int] | None, seed: int = 0):
    """A ``RankingData`` of the world's shape (``aigcrec.ranking.data.world_dataset``'s fields).

    Per impression as in the default world: 1/100 users, 1/25 items, 1/10 sessions; 50 items a creator,
    17 a series; labels from a latent match (user's components vs the item's) with a ~19 % positive rate.
    ``widths=None``: no content vectors and no history (the tabular models read none).
    """
    import pandas as pd

    from aigcrec.data.schemas import EMOTIONS
    from aigcrec.ranking.data import RankingData, history_field
    from aigcrec.ranking.features import Field

    rng = np.random.default_rng(seed)
    n_users, n_items = max(impressions // 100, 10), max(impressions // 25, 40)
    n_sessions = max(impressions // 10, 10)
    mix = Mixture(seed=seed)
    item_comp = mix.labels(n_items, seed + 1)
    user_comp = mix.labels(n_users * 2, seed + 2).reshape(n_users, 2)
    item_ids = np.array([f"i{j:07d}" for j in range(n_items)])
    vocab = np.array([f"tag{t}" for t in range(600)])
    items = pd.DataFrame({
        "item_id": item_ids,
        "creator_id": [f"c{j // 50:05d}" for j in rng.permutation(n_items)],
        "series_id": [f"s{j // 17:06d}" for j in rng.permutation(n_items)],
        "tags": [list(vocab[rng.integers(0, 600, rng.integers(3, 9))]) for _ in range(n_items)],
    })
    users = pd.DataFrame({
        "user_id": [f"u{j:06d}" for j in range(n_users)],
        "age_group": rng.choice(["18-24", "25-34", "35-44", "45+", None], n_users),
        "country": rng.choice(["CN", "JP", "US", "BR", "DE", "IN"], n_users),
        "gender": rng.choice(["f", "m", None], n_users),
        "lang": rng.choice(["zh", "ja", "en"], n_users),
        "follows": [[f"c{c:05d}" for c in rng.integers(0, max(n_items // 50, 1), rng.integers(0, 6))]
                    for _ in range(n_users)],
    })
    session_user = rng.integers(0, n_users, n_sessions)
    sess = rng.integers(0, n_sessions, impressions)
    u = session_user[sess]
    it = rng.integers(0, n_items, impressions)
    match = (item_comp[it] == user_comp[u, 0]) | (item_comp[it] == user_comp[u, 1])
    label = rng.random(impressions) < np.where(match, 0.6, 0.17)
    frame = pd.DataFrame({
        "user_id": users["user_id"].to_numpy()[u], "item_id": item_ids[it], "label": label.astype(np.int64),
        "timestamp": 1.7e9 + sess * 600.0 + rng.random(impressions) * 500.0,
        "session_id": np.char.add("x", sess.astype(str)),
    })
    frame = frame.merge(users, on="user_id", how="left").merge(items, on="item_id", how="left")
    fields = [Field("user_id", "categorical", "user")]
    fields += [Field(c, "categorical", "user") for c in ("age_group", "country", "gender", "lang")]
    fields += [Field("follows", "tags", "user", max_len=8)]
    fields += [Field("item_id", "categorical", "item", id_dropout=True),
               Field("creator_id", "categorical", "item"), Field("series_id", "categorical", "item"),
               Field("tags", "tags", "item", max_len=8)]
    tables: dict[str, tuple[list[str], np.ndarray]] = {}
    if widths:
        latent = mix.sample(item_comp, seed + 3)
        for name, block in content_blocks(latent, widths, seed + 4).items():
            tables[name] = (item_ids.tolist(), block)
        fields += [Field(name, "vector", "item", key="item_id", modality=True) for name in widths]
        fields += [history_field()]
    n_ctx = len(EMOTIONS) + 5
    onehot = np.zeros((n_sessions, n_ctx), np.float32)
    onehot[np.arange(n_sessions), rng.integers(0, len(EMOTIONS), n_sessions)] = 1
    onehot[np.arange(n_sessions), len(EMOTIONS) + rng.integers(0, 5, n_sessions)] = 1
    tables["affect"] = (np.char.add("x", np.arange(n_sessions).astype(str)).tolist(), onehot)
    fields.append(Field("affect", "vector", "context", key="session_id", modality=False))
    return RankingData("scale", frame, fields, tables, users), item_ids, item_comp


# -- measuring -----------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def percentiles(ms: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(ms, np.float64)
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3)}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def single_query_ms(index, queries: np.ndarray, k: int = K) -> tuple[np.ndarray, list[float]]:
    """Rows found and per-query wall ms, one query at a time (as a request searches)."""
    found, ms = np.empty((len(queries), k), np.int64), []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        _, rows = index.search(queries[i : i + 1], k)
        ms.append((time.perf_counter() - t0) * 1e3)
        found[i] = rows[0]
    return found, ms


def recall_at(truth: np.ndarray, found: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found)]))


# -- parts (each in its own process) -------------------------------------------------------------------
def part_retrieval(args) -> dict[str, Any]:
    import faiss  # the index library under test

    from aigcrec.service.retrieval import VectorIndex

    faiss.omp_set_num_threads(1)  # one request thread searches one query
    n = args.items
    mix = Mixture(seed=0)
    x, gen_s = timed(lambda: mix.sample(mix.labels(n, 1), seed=2))
    rows = np.arange(n)
    queries = mix.user_queries(args.queries, seed=3)
    flat = VectorIndex(DIM, n + 1)
    _, flat_build = timed(lambda: flat.build(x, rows))
    faiss.omp_set_num_threads(2)
    (_, truth), gt_s = timed(lambda: flat.search(queries, K))  # batched ground truth
    faiss.omp_set_num_threads(1)
    _, flat_ms = single_query_ms(flat, queries[: args.latency_queries])
    out = {"items": n, "queries": len(queries), "generate_s": round(gen_s, 2),
           "ground_truth_s": round(gt_s, 2),
           "indexes": [{"kind": "flat", "param": None, "build_s": round(flat_build, 3), "recall_at_100": 1.0,
                        "bytes_per_item": index_bytes(flat) / n, **percentiles(flat_ms)}]}
    del flat
    kinds = {"ivf": args.nprobe, **({"hnsw": args.ef_search} if n <= args.hnsw_max_items else {})}
    extra = mix.sample(mix.labels(args.live_adds, 4), seed=5)  # items posted after the build
    out["live_add"] = {}
    for kind, params in kinds.items():
        index = VectorIndex(DIM, 1, approx_kind=kind, hnsw_m=args.hnsw_m,
                            ef_construction=args.ef_construction)
        faiss.omp_set_num_threads(2)  # building may use both cores (the service builds at start)
        _, build_s = timed(lambda: index.build(x, rows))
        faiss.omp_set_num_threads(1)
        log.info("%s on %d items built in %.1f s", kind, n, build_s)
        inner = faiss.downcast_index(index._index.index) if kind == "hnsw" else index._index
        for param in params:
            if kind == "ivf":
                inner.nprobe = param
            else:
                inner.hnsw.efSearch = param
            found, ms = single_query_ms(index, queries[: args.latency_queries])
            if len(queries) > args.latency_queries:  # recall over every query (batched; same answers)
                _, found = index.search(queries, K)
            row = {"kind": kind, "param": param, "build_s": round(build_s, 3),
                   "recall_at_100": round(recall_at(truth, found), 4),
                   "bytes_per_item": index_bytes(index) / n,
                   **percentiles(ms)}
            if kind == "ivf":
                row["nlist"] = int(inner.nlist)
            out["indexes"].append(row)
            log.info("%s", row)
        # live adds after the build, one at a time as POST /v1/items does; each must then find itself first
        add_ms = []
        for j in range(len(extra)):
            t0 = time.perf_counter()
            index.add(extra[j : j + 1], np.array([n + j]))
            add_ms.append((time.perf_counter() - t0) * 1e3)
        _, top = index.search(extra, 1)
        itself = float(np.mean(top[:, 0] == n + np.arange(len(extra))))
        out["live_add"][kind] = {"adds": len(extra), **percentiles(add_ms),
                                 "found_itself_first": round(itself, 4)}
        del index, inner
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def index_bytes(index) -> float:
    import faiss  # the index library under test

    return float(faiss.serialize_index(index._index).nbytes)


def bounded_fit(model, prep, samples: int, batch_size: int, seed: int = 0):
    """``fit`` on ``samples`` random training rows for one epoch (the per-step cost of a full epoch)."""
    from aigcrec.ranking.config import TrainConfig
    from aigcrec.ranking.trainer import fit

    train, y = prep.parts["train"], prep.labels["train"]
    rows = np.sort(np.random.default_rng(seed).permutation(len(train))[: min(samples, len(train))])
    val_rows = np.arange(min(4096, len(prep.parts["val"])))
    cfg = TrainConfig(max_epochs=1, batch_size=batch_size, threads=1)
    val = prep.parts["val"].take(val_rows)
    return fit(model, train.take(rows), y[rows], val, prep.labels["val"][val_rows], cfg, seed=seed)


def part_ranking(args) -> dict[str, Any]:
    import torch

    from aigcrec.ranking.config import ModelConfig
    from aigcrec.ranking.data import warm_split
    from aigcrec.ranking.experiment import prepare, variant_config
    from aigcrec.ranking.models import build_model

    torch.set_num_threads(1)
    tabular = args.model == "dcnv2"
    (data, _, _), gen_s = timed(lambda: ranking_data(args.impressions, None if tabular else WORLD_WIDTHS))
    split, split_s = timed(lambda: warm_split(data.frame))
    prep, prep_s = timed(lambda: prepare(data, split))
    kind, cfg = variant_config(args.model, ModelConfig(cross_fields=False))  # the world configs' setting
    torch.manual_seed(0)
    model = build_model(kind, prep.spec, cfg, prep.tables)
    res, fit_s = timed(lambda: bounded_fit(model, prep, args.train_samples, args.batch_size))
    n_train = len(prep.parts["train"])
    return {"model": args.model, "impressions": args.impressions, "train_rows": n_train,
            "users": int(data.frame["user_id"].nunique()), "items": int(data.frame["item_id"].nunique()),
            "generate_s": round(gen_s, 2), "split_s": round(split_s, 2), "prepare_s": round(prep_s, 2),
            "trained_samples": min(args.train_samples, n_train),
            "train_samples_per_s": round(res.train_samples_per_s, 1),
            "epoch_s_extrapolated": round(n_train / res.train_samples_per_s, 1),
            "fit_wall_s": round(fit_s, 2),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def part_encode(args) -> dict[str, Any]:
    import ray  # optional heavy dependency (the distributed extra)

    from aigcrec.config import AppConfig
    from aigcrec.distributed.benchmark import bench_encode
    from aigcrec.world import ensure_world

    work = Path(args.work)
    world = ensure_world(work / "world-tiny-0", "tiny", 0)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    _, ray_start = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False))
    try:
        rows, _ = bench_encode(world, work / "encode", AppConfig().content, [1, 2])
    finally:
        ray.shutdown()
    return {"world": "tiny/0", "ray_start_s": round(ray_start, 2), "rows": rows,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def serving_ranker(
    widths: dict[str, int], catalog_ids: np.ndarray, catalog_blocks: dict[str, np.ndarray], train_samples: int
):
    """A UMAIR-FPS bundle on ONNX Runtime trained briefly (for latency only) on 20,000 impressions whose
    items are the catalog's first items (same ids and vectors)."""
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.config import ModelConfig
    from aigcrec.ranking.data import warm_split
    from aigcrec.ranking.experiment import prepare, variant_config
    from aigcrec.ranking.models import build_model

    data, item_ids, _ = ranking_data(20_000, widths, seed=5)
    n = len(item_ids)
    for name in widths:  # the ranker knows the catalog's first n items by their own vectors
        data.vectors[name] = (catalog_ids[:n].tolist(), catalog_blocks[name][:n])
    data.frame["item_id"] = data.frame["item_id"].map(dict(zip(item_ids, catalog_ids[:n])))
    prep = prepare(data, warm_split(data.frame))
    kind, cfg = variant_config("umair_fps", ModelConfig(cross_fields=False))
    import torch

    torch.manual_seed(0)  # the same weights in every process (recommend_speed_check.py rebuilds this state)
    model = build_model(kind, prep.spec, cfg, prep.tables)
    bounded_fit(model, prep, train_samples, 1024)
    bundle = RankerBundle.from_training(kind, model, prep.data.frame).use_onnx(1)
    return bundle, data.users["user_id"].tolist()


def open_loop(fn: Callable[[int], None], rate: float, seconds: float, threads: int) -> dict[str, Any]:
    """Requests scheduled at ``rate``/s for ``seconds``, served by ``threads`` workers; latency counts
    from each request's scheduled arrival (queueing included)."""
    n = int(rate * seconds)
    todo: queue.Queue = queue.Queue()
    lat = np.zeros(n)
    start = time.perf_counter() + 0.05

    def worker() -> None:
        while True:
            i = todo.get()
            if i is None:
                return
            fn(i)
            lat[i] = (time.perf_counter() - (start + i / rate)) * 1e3

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        todo.put(i)
    for _ in pool:
        todo.put(None)
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    return {"rate_per_s": rate, "requests": n, "achieved_per_s": round(n / wall, 1), **percentiles(lat)}


def recommend_world(args) -> dict[str, Any]:
    """The recommend part's serving state: ``RecommendPipeline`` over ``args.items`` synthetic items (content
    widths 1/``args.width_div``), a briefly trained UMAIR-FPS bundle on ONNX, 2,000 users' clicks observed,
    and 100,000 asked user ids (5 % unknown). Deterministic in its seeds (the speed checks rebuild it)."""
    import torch

    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.pipeline import RecommendPipeline

    torch.set_num_threads(1)
    n = args.items
    widths = {k: max(8, v // args.width_div) for k, v in WORLD_WIDTHS.items()}
    mix = Mixture(seed=0)
    comp = mix.labels(n, 1)
    latent = mix.sample(comp, seed=2)
    blocks, gen_s = timed(lambda: content_blocks(latent, widths, seed=4))
    del latent
    ids = np.array([f"i{j:07d}" for j in range(n)])
    rng = np.random.default_rng(6)
    metas = [{"item_id": ids[j], "style": f"st{comp[j] % 8}", "creator_id": f"c{j % max(n // 50, 1)}",
              "created_at": 1.7e9 + j} for j in range(n)]
    (bundle, known_users), rank_s = timed(lambda: serving_ranker(widths, ids, blocks, args.train_samples))
    tuned = {"approx_kind": args.approx_kind,
             ("ivf_nprobe" if args.approx_kind == "ivf" else "hnsw_ef_search"): args.approx_param}
    config = ServiceConfig(retrieval=RetrievalConfig(**tuned))  # this run's choice at the largest size
    pipe, build_s = timed(lambda: RecommendPipeline.build(config, metas, blocks, bundle, seed=0))
    del metas
    # users: 2,000 with 20 positives each from 1-3 components (the bundle's users first), 5 % unknown
    by_comp = {c: np.flatnonzero(comp == c) for c in np.unique(comp)}
    users = known_users[:2000] + [f"new{j}" for j in range(max(0, 2000 - len(known_users)))]
    events = []
    for uid in users:
        comps = rng.choice(list(by_comp), size=rng.integers(1, 4))
        for c in rng.choice(comps, size=20):
            events.append({"user_id": uid, "item_id": str(ids[rng.choice(by_comp[c])]), "type": "click"})
    pipe.observe(events)
    asked = [users[j] if rng.random() > 0.05 else f"cold{j}" for j in rng.integers(0, len(users), 100_000)]
    return {"pipe": pipe, "config": config, "asked": asked, "widths": widths, "tuned": tuned,
            "generate_s": gen_s, "ranker_train_s": rank_s, "pipeline_build_s": build_s}


def part_recommend(args) -> dict[str, Any]:
    w = recommend_world(args)
    pipe, config, asked, n = w["pipe"], w["config"], w["asked"], args.items
    timings: list[dict[str, float]] = []

    def one(i: int) -> None:
        rec = pipe.recommend(asked[i % len(asked)], config.default_k)
        if len(rec.items) != config.default_k:
            raise RuntimeError(f"recommend returned {len(rec.items)} items")
        timings.append(rec.timings_ms)

    for i in range(20):  # warm-up
        one(i)
    seq, cpu = [], []
    t_end = time.perf_counter() + args.sequential_s
    i = 0
    while time.perf_counter() < t_end:
        t0, c0 = time.perf_counter(), time.thread_time()
        one(i)
        seq.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)  # this thread's CPU (ONNX Runtime runs on it: 1 thread)
        i += 1
    # the whole process's CPU over further sequential requests: any helper threads (FAISS / ORT pools) too
    p0, n_proc = time.process_time(), min(len(seq), 500)
    for j in range(i, i + n_proc):
        one(j)
    proc_cpu_ms = (time.process_time() - p0) / n_proc * 1e3
    timings.clear()
    threads = config.limits.recommend_threads
    load = open_loop(one, args.rate, args.load_s, threads)
    # the rate one thread sustained sequentially, x 0.8: the latency this machine gives below saturation
    easy_rate = round(0.8 * 1000.0 / float(np.mean(seq)), 1)
    easy = open_loop(one, easy_rate, args.sustainable_s, threads)
    stages = {k: round(float(np.median([t.get(k, 0.0) for t in timings])), 3)
              for k in ("retrieval", "ranking", "rerank")}
    return {"items": n, "widths": w["widths"], "index": pipe.index.kind, "retrieval_config": w["tuned"],
            "generate_s": round(w["generate_s"], 2),
            "ranker_train_s": round(w["ranker_train_s"], 2), "pipeline_build_s": round(w["pipeline_build_s"], 2),
            "sequential": {"requests": len(seq), **percentiles(seq),
                           "cpu_ms_mean": round(float(np.mean(cpu)), 3),
                           "process_cpu_ms_mean": round(proc_cpu_ms, 3)},
            "open_loop": load, "open_loop_sustainable": easy,
            "stage_median_ms_under_load": stages, "threads": config.limits.recommend_threads,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


PARTS = {"retrieval": part_retrieval, "ranking": part_ranking, "encode": part_encode,
         "recommend": part_recommend}


# -- orchestration -------------------------------------------------------------------------------------
class LoadSampler:
    """The 1-minute load average every ``every`` seconds while the benchmark runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        a = np.asarray(self.samples or [os.getloadavg()[0]])
        return {k: round(float(f(a)), 2) for k, f in (("mean", np.mean), ("min", np.min), ("max", np.max))}


PRIOR_DROP = ("reused", "wall_s", "load_before", "load_after", "part_wall_s", "part_load_before",
              "part_load_after")


def prior_part(prior: dict[str, Any] | None, name: str, **key: Any) -> dict[str, Any] | None:
    """The result of part ``name`` with fields ``key`` in an earlier run's ``scale.json`` (``--reuse-from``),
    without that run's timing and load fields; None when absent or failed."""
    if prior is None:
        return None
    if name == "encode":
        found = prior.get("encode")
    else:
        found = next((r for r in prior.get(name, []) if all(r.get(k) == v for k, v in key.items())), None)
    if not found or "error" in found:
        return None
    return {**{k: v for k, v in found.items() if k not in PRIOR_DROP}, "reused_from_earlier_run": True}


def run_part(name: str, opts: list[str], work: Path, timeout: float, reuse: bool = False,
             earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """One part in a child process (same interpreter, niced); its JSON from ``work`` (with ``reuse``, an
    earlier run's JSON of the same part and options is read instead); ``earlier``: that result as read
    from an earlier run's ``scale.json`` (``--reuse-from``), used as it is."""
    if earlier is not None:
        log.info("part %s %s: from the earlier run's JSON", name, " ".join(opts))
        return earlier
    out = work / f"{name}-{'-'.join(o.lstrip('-') for o in opts)}.json"
    if reuse and out.is_file():
        log.info("part %s %s: reusing %s", name, " ".join(opts), out.name)
        return {**json.loads(out.read_text()), "reused": True}
    cmd = ["nice", "-n", "10", sys.executable, str(Path(__file__).resolve()), "--part", name,
           "--part-out", str(out), "--work", str(work), *opts]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    log.info("part %s %s", name, " ".join(opts))
    try:
        proc = subprocess.run(cmd, timeout=timeout, capture_output=True, text=True)
        ok = proc.returncode == 0 and out.is_file()
        err = "" if ok else (proc.stderr or proc.stdout)[-2000:]
    except subprocess.TimeoutExpired:
        ok, err = False, f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - t0
    result = json.loads(out.read_text()) if ok else {"error": err}
    result.update(wall_s=round(wall, 1), load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2))
    if not ok:
        log.warning("part %s %s failed: %s", name, opts, err)
    return result


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares exponent b of ``y = a x^b`` (log-log), None with fewer than two positive points."""
    pts = [(x, y) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2:
        return None
    lx, ly = np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts])
    return round(float(np.polyfit(lx, ly, 1)[0]), 3)


def choose_index(retrieval: list[dict], target: float, min_items: int) -> dict[str, Any]:
    """The approximate setting with recall >= ``target`` at every measured size from ``min_items`` (the
    config's approx_min_items) on, and the lowest mean query latency at the largest size (the mean of 100
    single queries is steadier than their p99 on a shared machine)."""
    sizes = sorted((r for r in retrieval if "indexes" in r and r["items"] >= min_items),
                   key=lambda r: r["items"])
    if not sizes:
        return {}
    big = sizes[-1]

    def holds(i: dict) -> bool:
        return all(any(j["kind"] == i["kind"] and j["param"] == i["param"] and j["recall_at_100"] >= target
                       for j in r["indexes"]) for r in sizes)

    ok = [i for i in big["indexes"] if i["kind"] != "flat" and holds(i)]
    best = min(ok, key=lambda i: i["mean_ms"], default=None)
    fastest = min((i for i in big["indexes"] if i["kind"] != "flat" and i["recall_at_100"] >= target),
                  key=lambda i: i["mean_ms"], default=None)
    return {"items": big["items"], "sizes": [r["items"] for r in sizes], "target_recall": target,
            "choice": best, "fastest_at_largest": fastest,
            "flat": next(i for i in big["indexes"] if i["kind"] == "flat")}


def curves(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cost as (x name, xs, y name, ys, slope)."""
    out = []

    def add(group: str, label: str, xname: str, xs, yname: str, ys) -> None:
        out.append({"group": group, "label": label, "x": xname, "xs": xs, "y": yname, "ys": ys,
                    "slope": slope(xs, ys)})

    retr = [r for r in res["retrieval"] if "indexes" in r]
    if retr:
        n = [r["items"] for r in retr]
        for kind, param in sorted({(i["kind"], i["param"] or 0) for r in retr for i in r["indexes"]}):
            param = param or None
            rows = [next((i for i in r["indexes"] if i["kind"] == kind and i["param"] == param), None)
                    for r in retr]
            xs = [x for x, i in zip(n, rows) if i]
            name = kind if param is None else f"{kind} {'nprobe' if kind == 'ivf' else 'efSearch'} {param}"
            add("retrieval p50 query ms", name, "items", xs, "p50_ms", [i["p50_ms"] for i in rows if i])
        for kind in ("flat", "ivf", "hnsw"):
            rows = [next((i for i in r["indexes"] if i["kind"] == kind), None) for r in retr]
            xs = [x for x, i in zip(n, rows) if i]
            add("index build s", kind, "items", xs, "build_s", [i["build_s"] for i in rows if i])
            add("index bytes", kind, "items", xs, "bytes",
                [i["bytes_per_item"] * x for x, i in zip(n, rows) if i])
    for model in ("umair_fps", "dcnv2"):
        rows = [r for r in res["ranking"] if r.get("model") == model and "epoch_s_extrapolated" in r]
        xs = [r["impressions"] for r in rows]
        add("ranker epoch s", model, "impressions", xs, "epoch_s", [r["epoch_s_extrapolated"] for r in rows])
        add("ranker prepare s", model, "impressions", xs, "prepare_s", [r["prepare_s"] for r in rows])
        add("ranker peak MB", model, "impressions", xs, "peak_rss_mb", [r["peak_rss_mb"] for r in rows])
    rec = [r for r in res["recommend"] if "open_loop" in r and r.get("width_div", 0) != 1]
    xs = [r["items"] for r in rec]
    add("recommend ms", "sequential p50", "items", xs, "ms", [r["sequential"]["p50_ms"] for r in rec])
    add("recommend ms", "CPU a request", "items", xs, "ms", [r["sequential"].get("cpu_ms_mean") for r in rec])
    add("recommend ms", f"p99 at {res['config']['rate']}/s", "items", xs, "ms",
        [r["open_loop"]["p99_ms"] for r in rec])
    add("recommend build s", "pipeline build", "items", xs, "s", [r["pipeline_build_s"] for r in rec])
    return [c for c in out if c["xs"]]


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "—" if v is None else str(v)


def table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _header(res: dict[str, Any]) -> list[str]:
    c, m = res["config"], res["machine"]
    parts = [r for key in ("retrieval", "ranking", "recommend") for r in res[key]]
    parts += [res["encode"]] if "encode" in res else []
    timed_parts = [r for r in parts if "part_wall_s" in r]
    loads = [r[k] for r in timed_parts for k in ("part_load_before", "part_load_after")]
    reused = sum(1 for r in parts if r.get("reused"))
    if loads:
        load = (f"{min(loads):.1f}-{max(loads):.1f} at the starts and ends of the {len(timed_parts)} parts "
                "that recorded it")
    else:
        load = f"{m['load_this_invocation']['mean']} during the run"
    wall = f"{sum(r['part_wall_s'] for r in timed_parts):.0f} s"
    if reused:
        wall += (f"; {reused} parts read from an earlier run's JSON (`--reuse`; their start times: "
                 "`parts.log`)")
    earlier = sum(1 for r in parts if r.get("reused_from_earlier_run"))
    if earlier:
        wall += (f"; {earlier} parts copied from the earlier run's scale.json (`--reuse-from`, not measured "
                 "again: the kinds outside `--rerun`; that run's loads are not repeated here)")
    return [
        "# Scale benchmark (synthetic catalogs and logs of the default world's shape)", "",
        f"Command: `{res['command']}`. Machine: {m['cpus']} CPUs shared with other jobs (1-minute load "
        f"average {load}), so absolute times are inflated and ratios within one run are the firmer figures. "
        f"Wall of the parts that recorded it: {wall}.", "",
        "Data: 128-d unit retrieval vectors from a Gaussian mixture of 384 components (Zipf 0.8 weights, "
        "decaying spectrum; `benchmarks/scale.py` docstring); queries are a user's history mean. Ranking "
        f"logs have the world's fields and widths; recommend catalogs have 1/{c['width_div']} of the content "
        f"widths (one full-width control at {c['control_items']:,} items).", ""]


def _targets(res: dict[str, Any]) -> list[str]:
    md = ["## Targets", ""]
    sel = res.get("index_choice", {})
    if sel.get("choice"):
        ch, flat = sel["choice"], sel["flat"]
        knob = "nprobe" if ch["kind"] == "ivf" else "efSearch"
        md.append(f"- Approximate index at {sel['items']:,} items: **{ch['kind']} {knob} {ch['param']}** has "
                  f"recall@100 {ch['recall_at_100']} (target >= {sel['target_recall']}) at p50 / p99 "
                  f"{ch['p50_ms']} / {ch['p99_ms']} ms a query, mean {ch['mean_ms']} ms (exact: "
                  f"{flat['p50_ms']} / {flat['p99_ms']} ms, mean {flat['mean_ms']} ms).")
    served = [r for r in res["recommend"] if "open_loop" in r and r.get("width_div") != 1]
    if served:
        big = max(served, key=lambda r: r["items"])
        ol, easy, seq = big["open_loop"], big["open_loop_sustainable"], big["sequential"]
        met = "met" if ol["p99_ms"] <= 25 and ol["achieved_per_s"] >= 0.95 * ol["rate_per_s"] else "NOT met"
        per_request = max(seq.get("cpu_ms_mean", 1e9), seq.get("process_cpu_ms_mean", 0.0))
        ceiling = 1000 / per_request * big["threads"]
        md.append(f"- Recommend without signals at {big['items']:,} items, {ol['rate_per_s']:.0f} requests/s "
                  f"on {big['threads']} threads: p50 {ol['p50_ms']} ms, p99 {ol['p99_ms']} ms, "
                  f"{ol['achieved_per_s']} answered/s (target p99 <= 25 ms: **{met}**). Sequential service "
                  f"time p50 / p99: {seq['p50_ms']} / {seq['p99_ms']} ms; CPU {seq.get('cpu_ms_mean')} ms a "
                  f"request (the whole process: {seq.get('process_cpu_ms_mean', '—')} ms), so {big['threads']} free cores would serve at most about {ceiling:.0f} "
                  f"requests/s. At "
                  f"{easy['rate_per_s']} requests/s (0.8 x the sequential rate under this load): p50 "
                  f"{easy['p50_ms']} ms, p99 {easy['p99_ms']} ms.")
    return md


def _recommend_row(r: dict[str, Any]) -> dict[str, Any]:
    seq, ol, easy = (r.get(k, {}) for k in ("sequential", "open_loop", "open_loop_sustainable"))
    return {"items": r["items"], "width_div": r.get("width_div"), "index": r.get("index"),
            "build_s": r.get("pipeline_build_s"), "cpu_ms": seq.get("cpu_ms_mean"),
            "proc_cpu_ms": seq.get("process_cpu_ms_mean"),
            "seq_p50": seq.get("p50_ms"), "seq_p99": seq.get("p99_ms"), "rate": ol.get("rate_per_s"),
            "answered_per_s": ol.get("achieved_per_s"),
            "p50": ol.get("p50_ms"), "p99": ol.get("p99_ms"), "sust_rate": easy.get("rate_per_s"),
            "sust_p50": easy.get("p50_ms"), "sust_p99": easy.get("p99_ms"),
            "stages_ms": r.get("stage_median_ms_under_load"), "peak_rss_mb": r.get("peak_rss_mb"),
            "error": r.get("error")}


def write_markdown(res: dict[str, Any], path: Path) -> None:
    md = _header(res) + _targets(res)
    exps = [{"cost": f"{cv['group']}: {cv['label']}", "versus": cv["x"],
             "sizes": ", ".join(f"{x:,}" for x in cv["xs"]),
             "values": ", ".join(fmt(float(y)) for y in cv["ys"]), "exponent": cv["slope"]}
            for cv in res["curves"]]
    md += ["", "## Growth exponents (slope of log cost on log size)", "",
           table(exps, ["cost", "versus", "sizes", "values", "exponent"])]
    rows = [{"items": r["items"], **i} for r in res["retrieval"] if "indexes" in r for i in r["indexes"]]
    md += ["", "## Retrieval", "",
           table(rows, ["items", "kind", "param", "nlist", "build_s", "bytes_per_item", "recall_at_100",
                        "p50_ms", "p99_ms"]), "",
           "param: IVF nprobe / HNSW efSearch. Latency: one query at a time, one thread. bytes_per_item: the "
           "serialised index over the items (vectors 512 B + ids / links)."]
    md += ["", "## Ranker training (one epoch extrapolated from a bounded number of batches)", "",
           table(res["ranking"], ["model", "impressions", "users", "items", "train_rows", "prepare_s",
                                  "trained_samples", "train_samples_per_s", "epoch_s_extrapolated",
                                  "peak_rss_mb", "error"]), "",
           "prepare_s: history field, feature-spec fit and encoding of every split. epoch_s_extrapolated = "
           "train rows / samples/s measured on `trained_samples` rows (batch 1024, 1 torch thread). "
           "peak_rss_mb: the part's process."]
    if res.get("skipped"):
        md += ["", "Not run: " + "; ".join(res["skipped"]) + "."]
    enc = res.get("encode", {})
    md += ["", "## Encoding (content encoder, tiny world)", ""]
    if "rows" in enc:
        cols = ["engine", "workers", "items", "wall_s", "items_per_s", "max_abs_diff_vs_local"]
        md += [table(enc["rows"], cols), "",
               f"Ray start {enc['ray_start_s']} s (apart). The cost per image does not depend on the "
               "catalog's size (exponent 1 in the number of items encoded)."]
    else:
        md += [f"Not measured: {enc.get('error', 'skipped')}"]
    md += ["", "## Recommend (RecommendPipeline in process, ONNX ranker, no signals)", "",
           table([_recommend_row(r) for r in res["recommend"]],
                 ["items", "width_div", "index", "build_s", "cpu_ms", "proc_cpu_ms", "seq_p50", "seq_p99", "rate",
                  "answered_per_s", "p50", "p99", "sust_rate", "sust_p50", "sust_p99", "stages_ms",
                  "peak_rss_mb", "error"]), "",
           "cpu_ms: CPU time of the serving thread per sequential request; proc_cpu_ms: the whole "
           "process's CPU per request over further sequential requests (helper threads included). seq: sequential requests (service "
           "time). p50 / p99: open loop at the fixed rate, from scheduled arrival (queueing included); "
           "sust_*: the same at 0.8 x the rate one thread sustained sequentially. Stage medians: the "
           "pipeline's own timings under the load. width_div 1: the world's full content widths."]
    path.write_text("\n".join(md) + "\n", encoding="utf-8")


def write_plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib  # optional: plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional: plots only

    groups = sorted({c["group"] for c in res["curves"]})
    cols = 3
    rows = (len(groups) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        for cv in (c for c in res["curves"] if c["group"] == g):
            ax.loglog(cv["xs"], cv["ys"], "o-", label=f"{cv['label']} (b={cv['slope']})")
            ax.set_xlabel(cv["x"])
        ax.set_title(g, fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main_all(args) -> None:
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res: dict[str, Any] = {"retrieval": [], "ranking": [], "recommend": [], "skipped": list(args.skip_note)}
    prior = json.loads(Path(args.reuse_from).read_text()) if args.reuse_from else None

    def earlier(name: str, **key: Any) -> dict[str, Any] | None:
        return None if name in args.rerun else prior_part(prior, name, **key)

    common = ["--queries", str(args.queries), "--latency-queries", str(args.latency_queries),
              "--hnsw-max-items", str(args.hnsw_max_items), "--nprobe", *map(str, args.nprobe),
              "--ef-search", *map(str, args.ef_search)]
    with LoadSampler() as load:
        for n in args.items:
            opts = ["--items", str(n), *common]
            res["retrieval"].append(run_part("retrieval", opts, work, args.part_timeout, args.reuse,
                                             earlier("retrieval", items=n)))
        tabular = args.impressions + args.tabular_extra
        for model, sizes in (("umair_fps", args.impressions), ("dcnv2", tabular)):
            samples = args.train_samples if model == "umair_fps" else args.tabular_train_samples
            for n in sizes:
                opts = ["--model", model, "--impressions", str(n), "--train-samples", str(samples)]
                res["ranking"].append(run_part("ranking", opts, work, args.part_timeout, args.reuse,
                                               earlier("ranking", model=model, impressions=n)))
        if not args.no_encode:
            res["encode"] = run_part("encode", [], work, args.part_timeout, args.reuse, earlier("encode"))
        choice = choose_index(res["retrieval"], 0.95, args.approx_min_items).get("choice")
        choice = choice or {"kind": "ivf", "param": 64}
        rec_opts = ["--approx-kind", choice["kind"], "--approx-param", str(choice["param"]),
                    "--rate", str(args.rate),
                    "--load-s", str(args.load_s), "--sequential-s", str(args.sequential_s),
                    "--sustainable-s", str(args.sustainable_s), "--train-samples", "4096"]
        for n, div in [(n, args.width_div) for n in args.items] + [(args.control_items, 1)]:
            opts = ["--items", str(n), "--width-div", str(div), *rec_opts]
            r = run_part("recommend", opts, work, args.part_timeout, args.reuse,
                         earlier("recommend", items=n, width_div=div))
            res["recommend"].append({**r, "items": r.get("items", n), "width_div": div})
    # the load while this invocation ran (seconds when every part is reused; each part records its own)
    res["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "load_this_invocation": load.summary()}
    keys = ("items", "impressions", "tabular_extra", "rate", "load_s", "width_div", "control_items",
            "train_samples", "tabular_train_samples", "nprobe", "ef_search", "hnsw_max_items", "queries",
            "latency_queries")
    res["config"] = {k: getattr(args, k) for k in keys}
    res["command"] = "PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/scale.py " + " ".join(args.argv)
    res["index_choice"] = choose_index(res["retrieval"], 0.95, args.approx_min_items)
    res["curves"] = curves(res)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "scale.json").write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    write_markdown(res, out / "scale.md")
    write_plot(res, out / "scale.png")
    log.info("wrote %s (%.0f s)", out, res["wall_s"])


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/scale"))
    p.add_argument("--work", default=str(ROOT / "runs/scale"), help="scratch folder (worlds, part JSON)")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run of every part)")
    p.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--impressions", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--tabular-extra", type=int, nargs="*", default=[5_000_000],
                   help="further log sizes for dcnv2 only (umair_fps's 200-item history at 5e6 rows is 8 GB)")
    p.add_argument("--train-samples", type=int, default=20_480)
    p.add_argument("--tabular-train-samples", type=int, default=153_600)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--hnsw-max-items", type=int, default=100_000,
                   help="HNSW is built only up to this size (its build at 10^6 is the longest step)")
    p.add_argument("--live-adds", type=int, default=1000)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=40)
    p.add_argument("--rate", type=float, default=300.0)
    p.add_argument("--approx-min-items", type=int, default=RETRIEVAL_DEFAULTS.approx_min_items,
                   help="the choice must hold from this size on (the config's default threshold)")
    p.add_argument("--reuse", action="store_true", help="read a part's JSON from --work when it exists")
    p.add_argument("--reuse-from", help="an earlier run's scale.json: every part not of a --rerun kind is "
                                        "read from it (its timing and load fields dropped)")
    p.add_argument("--rerun", nargs="*", default=[], choices=sorted(PARTS),
                   help="with --reuse-from: the kinds of part measured again")
    p.add_argument("--approx-kind", default="ivf", help="recommend: the approximate index (set by the run)")
    p.add_argument("--approx-param", type=int, default=64, help="recommend: its nprobe / efSearch")
    p.add_argument("--load-s", type=float, default=5.0, help="seconds of arrivals at --rate")
    p.add_argument("--sustainable-s", type=float, default=10.0,
                   help="seconds of arrivals at 0.8 x the sequential rate")
    p.add_argument("--sequential-s", type=float, default=5.0)
    p.add_argument("--width-div", type=int, default=8)
    p.add_argument("--control-items", type=int, default=10_000)
    p.add_argument("--no-encode", action="store_true")
    p.add_argument("--part-timeout", type=float, default=900.0)
    p.add_argument("--part", choices=sorted(PARTS))
    p.add_argument("--part-out")
    p.add_argument("--model", default="umair_fps")
    args = p.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.items, args.impressions, args.tabular_extra = [2_000, 20_000], [20_000, 60_000], []
        args.train_samples, args.tabular_train_samples, args.load_s, args.sequential_s = 4096, 8192, 2.0, 1.0
        args.sustainable_s = 2.0
        args.control_items, args.queries, args.latency_queries = 2_000, 100, 50
    args.skip_note = [] if args.hnsw_max_items >= max(args.items) else [
        f"HNSW above {args.hnsw_max_items:,} items (--hnsw-max-items)"]
    if args.part:  # a part measures one size
        args.items, args.impressions = args.items[0], args.impressions[0]
    elif not args.quick:
        args.skip_note.append("umair_fps at 5 x 10^6 impressions (its encoded 200-item history alone is "
                              "5e6 x 200 int64 = 8 GB on a 23 GB machine shared with other jobs)")
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.part:
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        result = PARTS[args.part](args)
        result.update(part_wall_s=round(time.perf_counter() - t0, 1), part_load_before=round(load0, 2),
                      part_load_after=round(os.getloadavg()[0], 2))
        Path(args.part_out).write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    else:
        main_all(args)


if __name__ == "__main__":
    main()
