"""``aigcrec benchmark ray``: the local engine against Ray with 1 and 2 workers, on one generated world.

Measured on one local Ray cluster (started once; its start-up time is reported apart):

- encode: wall seconds and items/s of ``encode_catalog`` (local) and ``encode_catalog_ray`` with 1 and
  2 actors on the world's catalog, each into a fresh store; the largest difference of any vector from
  the local store;
- train: UMAIR-FPS on the world's warm split with the content vectors, per seed: test AUC / logloss /
  gAUC and wall seconds, single-process and on Ray Train with 1 and 2 DDP workers; MMEI on the world's
  affect sessions the same way (test emotion macro-F1 / NLL, intent macro-F1);
- serve: ``POST /v1/recommend`` through Ray Serve with 1 and 2 ``Ranking`` replicas (fixed), sequential
  and with concurrent clients: p50 / p95 latency and requests/s.

Writes ``ray_scaleout.json`` and ``ray_scaleout.md`` under ``out``. On a 2-core machine the workers
share the cores with each other and with Ray's own processes: the figures show overhead and
correctness, not the speed-up a cluster gives (docs/scale-out.md).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aigcrec.affect.benchmark import split_data
from aigcrec.affect.tasks import fusion_data, train_world_mmei
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.store import FeatureStore, encode_catalog
from aigcrec.distributed.config import Autoscaling, DistributedConfig
from aigcrec.distributed.encode import encode_catalog_ray
from aigcrec.distributed.serve import APP_NAME, real_application, start
from aigcrec.distributed.train import mmei_fit_on_ray, run_variant_ray
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.data import MODALITIES, warm_split, world_dataset
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.service.assemble import ServicePaths
from aigcrec.world import ensure_world

log = logging.getLogger("aigcrec.distributed")


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "values": [float(v) for v in values]}


def bench_encode(world: Path, out: Path, config, worker_counts: list[int]) -> tuple[list[dict], Path]:
    """Local and Ray encoding of the world's catalog; returns the rows and the local store's folder."""

    encoder = ContentEncoder(config)
    rows, stores = [], {}
    runs = [("local", 1)] + [("ray", w) for w in worker_counts]
    for engine, workers in runs:
        target = out / f"features-{engine}-{workers}"
        shutil.rmtree(target, ignore_errors=True)
        t0 = time.perf_counter()
        if engine == "local":
            store = encode_catalog(world, target, encoder=encoder, show_progress=False)
        else:
            store = encode_catalog_ray(world, target, encoder=encoder, workers=workers, show_progress=False)
        wall = time.perf_counter() - t0
        stores[(engine, workers)] = store
        n = len(store.item_ids)
        rows.append({"engine": engine, "workers": workers, "items": n, "wall_s": round(wall, 2),
                     "items_per_s": round(n / wall, 2)})
    local = stores[("local", 1)]
    for row in rows:
        store = stores[(row["engine"], row["workers"])]
        row["max_abs_diff_vs_local"] = float(max(np.abs(store.load(n)[1] - local.load(n)[1]).max()
                                                 for n in local.names))
    return rows, local.path


def bench_train(world: Path, store_dir: Path, out: Path, model_cfg, train_cfg, seeds: list[int],
                worker_counts: list[int]) -> tuple[list[dict], Path]:
    """UMAIR-FPS single-process vs Ray Train; returns the rows and a saved ranker bundle (first seed, local).

    ``wall_s`` is the whole call (Ray: worker start-up, data transfer, checkpointing included);
    ``train_step_s`` the optimisation steps only (rank 0's on Ray).
    """

    store = FeatureStore(store_dir)
    data = world_dataset(world, {name: store.load(name) for name in MODALITIES if name in store.names})
    prep = prepare(data, warm_split(data.frame))
    results: dict[tuple[str, int], list[dict]] = {}
    bundle_dir = out / "ranker"
    for seed in seeds:
        runs = [("local", 1, run_variant)] + [
            ("ray", w, functools.partial(run_variant_ray, workers=w, storage_dir=out / "ray_train"))
            for w in worker_counts]
        for engine, workers, runner in runs:
            t0 = time.perf_counter()
            result = runner(prep, "umair_fps", model_cfg, train_cfg, seed)
            wall = time.perf_counter() - t0
            results.setdefault((engine, workers), []).append(
                {**result.metrics, "wall_s": wall, "train_step_s": result.fit.train_seconds})
            if engine == "local" and seed == seeds[0]:
                frame = prep.data.frame.iloc[prep.rows["train"]]
                RankerBundle.from_training("umair_fps", result.model, frame, {"variant": "umair_fps"}).save(bundle_dir)
    rows = []
    for (engine, workers), runs in results.items():
        row: dict[str, Any] = {"engine": engine, "workers": workers, "seeds": len(runs)}
        for key in ("auc", "logloss", "gauc", "best_epoch", "wall_s", "train_step_s"):
            row[key] = _mean_std([r[key] for r in runs])
        rows.append(row)
    return rows, bundle_dir


def bench_mmei(world: Path, work: Path, affect_cfg, seeds: list[int], worker_counts: list[int]) -> list[dict]:
    """MMEI (``train_world_mmei``, the ``aigcrec train mmei`` path) single-process vs Ray Train, per seed.

    The world's affect features are encoded once (cached under ``work``); ``wall_s`` is the whole training
    call (Ray: worker start-up and checkpointing included). Test emotion macro-F1 / NLL and intent macro-F1.
    """

    data, split, _ = fusion_data(world, affect_cfg, work / "affect-cache")
    splits = split_data(data, split)
    results: dict[tuple[str, int], list[dict]] = {}
    for seed in seeds:
        runs = [("local", 1, None)] + [("ray", w, mmei_fit_on_ray(w, work / "ray_train"))
                                       for w in worker_counts]
        for engine, workers, fit in runs:
            t0 = time.perf_counter()
            _, metrics = train_world_mmei(splits, affect_cfg, seed, fit=fit)
            wall = time.perf_counter() - t0
            results.setdefault((engine, workers), []).append(
                {"emotion_macro_f1": metrics["test"]["emotion"]["macro_f1"],
                 "emotion_nll": metrics["test"]["emotion"]["nll"],
                 "intent_macro_f1": metrics["test"]["intent"]["macro_f1"], "epochs": metrics["epochs"],
                 "wall_s": wall})
    rows = []
    for (engine, workers), runs in results.items():
        row: dict[str, Any] = {"engine": engine, "workers": workers, "seeds": len(runs)}
        for key in runs[0]:
            row[key] = _mean_std([r[key] for r in runs])
        rows.append(row)
    return rows


def bench_serve(world: Path, store_dir: Path, ranker_dir: Path, out: Path, cfg, replica_counts: list[int],
                requests: int, clients: int) -> list[dict]:
    """``POST /v1/recommend`` through Ray Serve with a fixed number of ``Ranking`` replicas."""
    import httpx  # lazy: the [serve] extra
    from ray import serve  # lazy: Ray is the optional [ray] extra


    paths = ServicePaths(world, store_dir, ranker_dir)
    users = [f"u{i:04d}" for i in range(1, 41)]  # the tiny world's first users (unknown ones are cold starts)
    rows = []
    for replicas in replica_counts:
        settings = DistributedConfig(ranking=Autoscaling(min_replicas=replicas, max_replicas=replicas, num_cpus=0.25),
                                     ingress_cpus=0.25)
        db = out / f"serve-{replicas}.sqlite"
        db.unlink(missing_ok=True)
        url = start(real_application(cfg, paths, db, settings), port=8700)
        with httpx.Client(base_url=url, timeout=120) as client:
            def call(i: int) -> float:
                t0 = time.perf_counter()
                r = client.post("/v1/recommend", json={"user_id": users[i % len(users)], "k": 12})
                r.raise_for_status()
                return time.perf_counter() - t0

            for i in range(5):  # warm-up
                call(i)
            for mode, workers in (("sequential", 1), (f"{clients} clients", clients)):
                t0 = time.perf_counter()
                with ThreadPoolExecutor(workers) as pool:
                    lat = sorted(pool.map(call, range(requests)))
                wall = time.perf_counter() - t0
                rows.append({"ranking_replicas": replicas, "mode": mode, "requests": requests,
                             "p50_ms": round(1e3 * lat[len(lat) // 2], 1),
                             "p95_ms": round(1e3 * lat[int(len(lat) * 0.95) - 1], 1),
                             "requests_per_s": round(requests / wall, 1)})
        serve.delete(APP_NAME)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, dict) and "mean" in v:
        return f"{v['mean']:.4f} ± {v['std']:.4f}" if abs(v["mean"]) < 10 else f"{v['mean']:.1f} ± {v['std']:.1f}"
    return str(v)


def _table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run_benchmark(out: Path, work_dir: Path, size: str = "tiny", world_seed: int = 0, seeds: list[int] | None = None,
                  worker_counts: list[int] | None = None, serve_requests: int = 100, clients: int = 4,
                  batch_size: int = 128, max_epochs: int = 8, *, config: Any) -> dict[str, Any]:
    """Run the three parts on one local Ray cluster and write ``ray_scaleout.json`` / ``.md`` to ``out``.

    The world, the feature stores, checkpoints and SQLite files go to ``work_dir`` (reused across runs).

    ``config``: the ``AppConfig`` (the caller, the CLI, assembles it). Training uses the ranking section of ``config`` with ``batch_size`` and ``max_epochs`` overridden (the
    default batch of 1024 is two steps per epoch on the tiny world); MMEI uses the affect section as is.
    """
    import ray  # lazy: Ray is the optional [ray] extra


    cfg = config
    seeds = seeds or [0, 1, 2]
    worker_counts = worker_counts or [1, 2]
    out, work = Path(out), Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    world = ensure_world(work / f"world-{size}-{world_seed}", size, world_seed)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    t0 = time.perf_counter()
    ray.init(num_cpus=max(worker_counts), include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    try:
        load_before = os.getloadavg()[0]
        encode_rows, store_dir = bench_encode(world, work, cfg.content, worker_counts)
        train_cfg = cfg.ranking.train.model_copy(update={"batch_size": batch_size, "max_epochs": max_epochs})
        train_rows, ranker_dir = bench_train(world, store_dir, work, cfg.ranking.model, train_cfg, seeds,
                                             worker_counts)
        mmei_rows = bench_mmei(world, work, cfg.affect, seeds, worker_counts)
        serve_rows = bench_serve(world, store_dir, ranker_dir, work, cfg, worker_counts, serve_requests, clients)
        load_after = os.getloadavg()[0]
    finally:
        from ray import serve  # lazy: Ray is the optional [ray] extra

        serve.shutdown()
        ray.shutdown()
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "ray": ray.__version__,
                    "load_avg_1m_before": round(load_before, 2), "load_avg_1m_after": round(load_after, 2)},
        "world": {"size": size, "seed": world_seed}, "ray_start_s": round(ray_start, 2),
        "train_config": train_cfg.model_dump(), "mmei_config": cfg.affect.mmei.model_dump(), "seeds": seeds,
        "encode": encode_rows, "train": train_rows, "train_mmei": mmei_rows, "serve": serve_rows,
    }
    (out / "ray_scaleout.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    machine = result["machine"]
    title = f"# Ray scale-out on one machine ({os.cpu_count()} CPUs, Ray {ray.__version__}, world {size}/{world_seed})"
    load = (f"Ray local cluster start: {result['ray_start_s']} s. 1-minute load average before / after: "
            f"{machine['load_avg_1m_before']} / {machine['load_avg_1m_after']}.")
    md = [title, "", load,
          "", "## Encode (catalog -> feature store)", "", _table(encode_rows),
          "", f"## Train UMAIR-FPS (warm split, seeds {seeds}; mean ± std)", "", _table(train_rows),
          "", f"## Train MMEI (world affect sessions, test split, seeds {seeds}; mean ± std)", "",
          _table(mmei_rows),
          "", "## Serve POST /v1/recommend (Ray Serve, fixed Ranking replicas)", "", _table(serve_rows), ""]
    (out / "ray_scaleout.md").write_text("\n".join(md), encoding="utf-8")
    log.info("wrote %s and %s", out / "ray_scaleout.json", out / "ray_scaleout.md")
    return result
