"""Data-parallel training on Ray Train: each stage's own training loop in N workers under DDP.

``train_ranker_ray`` (UMAIR-FPS and the other rankers) and ``train_mmei_ray`` (MMEI) start a Ray Train
``TorchTrainer`` (gloo backend on CPU). Each of the ``workers`` processes builds the same model from the
same config and seed, takes an equal shard of the training rows and runs the stage's own training code
(``aigcrec.ranking.trainer.fit``, ``AffectModel.fit``) with the network wrapped in
``DistributedDataParallel``:

- shards: a seeded permutation of the N training rows cut into ``workers`` equal parts of
  ``⌊N / workers⌋`` rows (at most ``workers - 1`` rows are left out, so every worker runs the same number
  of steps, which DDP's collective all-reduce requires);
- batch: ``batch_size // workers`` rows per worker, so the global batch (and so the learning dynamics) of
  one step equals single-process training; DDP averages the gradients over workers;
- validation: every worker scores the full validation set each epoch; weights are identical on every
  worker after each step, so all take the same early-stopping decision and keep the same best epoch;
  module buffers (MMEI's feature standardisers) are rank 0's, broadcast by DDP before each forward;
- checkpoint: rank 0 saves the best model in the stage's own format — a ``RankerBundle`` (``config.json``,
  ``weights.pt``, users / items parquet; ``meta`` says engine and workers) or an affect model folder
  (``config.json`` with the configured global batch, ``weights.pt``, ``ray_run.json``) — and reports that
  folder to Ray Train; the driver loads it back.

On one machine this shows that the engine is correct, not that it is faster: see docs/scale-out.md.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from torch.nn.parallel import DistributedDataParallel
import torch
import torch.distributed as dist

from aigcrec.distributed.cluster import ray_session, require_ray
from aigcrec.affect.model import AffectModel
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.config import ModelConfig, TrainConfig
from aigcrec.ranking.experiment import RunResult, ctr_metrics, variant_config
from aigcrec.ranking.models import build_model
from aigcrec.ranking.trainer import FitResult, fit, predict

log = logging.getLogger("aigcrec.distributed")

RAY_RUN_FILE = "ray_run.json"  # next to an MMEI checkpoint's config.json: engine, workers, seed, shard size


def equal_shards(n: int, workers: int, seed: int) -> list[np.ndarray]:
    """Split ``range(n)`` into ``workers`` disjoint, seeded-random shards of ``n // workers`` rows each."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if n < workers:
        raise ValueError(f"cannot shard {n} training rows over {workers} workers (need at least one row each)")
    per = n // workers
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[r * per:(r + 1) * per]) for r in range(workers)]


def _synced(module):
    """``module`` under DDP, still answering the wrapped network's own attributes.

    The stages' training code reads attributes of its network (``model.spec``, ``model.lookup``,
    ``net.proj``, ``net.modalities``); DDP hides them behind ``.module``. Calling the wrapper runs DDP's
    forward (gradient all-reduce in backward); every other attribute is the wrapped network's.
    """
    class SyncedModule(DistributedDataParallel):
        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    # Some parameters may get no gradient in a step (ablated fields, a head without labels in a batch).
    return SyncedModule(module, find_unused_parameters=True)


def weights_in_sync(module) -> bool:
    """Whether every worker holds rank 0's parameters (a collective: every worker must call it)."""

    flat = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    same = torch.tensor([float(torch.equal(flat, ref))])
    dist.all_reduce(same, op=dist.ReduceOp.MIN)
    return bool(same.item())


def _ranker_worker(cfg: dict[str, Any]) -> None:
    """The per-worker loop Ray Train runs (module level so workers import it by name)."""
    import ray  # lazy: Ray is the optional [ray] extra
    import ray.train  # lazy: Ray is the optional [ray] extra


    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    data = ray.get(cfg["data"])
    kind, model_cfg = variant_config(cfg["variant"], ModelConfig.model_validate(cfg["model"]))
    train_cfg = TrainConfig.model_validate(cfg["train"])
    local_cfg = train_cfg.model_copy(update={"batch_size": max(1, train_cfg.batch_size // world)})
    seed = cfg["seed"]
    torch.manual_seed(seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    model = build_model(kind, data["spec"], model_cfg, data["tables"])
    shard = equal_shards(len(data["train"]), world, seed)[rank]
    t0 = time.perf_counter()
    result = fit(_synced(model), data["train"].take(shard), data["y_train"][shard], data["val"], data["y_val"],
                 local_cfg, seed=seed + rank)
    loop_s = time.perf_counter() - t0
    metrics = {"rank": rank, "workers": world, "weights_in_sync": weights_in_sync(model),
               "best_epoch": result.best_epoch,
               "best_val_auc": float(result.best_val_auc), "history": result.history,
               "worker_samples_per_s": result.train_samples_per_s, "train_seconds": result.train_seconds,
               "loop_seconds": loop_s, "shard_rows": len(shard)}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            meta = {"variant": cfg["variant"], "seed": seed, "engine": "ray", "workers": world,
                    "train_config": cfg["train"], "worker_batch_size": local_cfg.batch_size,
                    "best_epoch": result.best_epoch, "val_auc": float(result.best_val_auc)}
            RankerBundle.from_training(kind, model, data["frame"], meta).save(tmp)
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


@dataclass
class RayFit:
    """What a Ray training run returns: the trained model as loaded from the checkpoint (a ``RankerBundle``
    or an ``AffectModel``), rank 0's metrics, the checkpoint folder and the wall time of ``fit``."""

    model: Any
    metrics: dict[str, Any]
    checkpoint_dir: Path
    wall_seconds: float


def _fit_on_ray(loop, loop_config: dict[str, Any], name: str, workers: int, storage_dir: str | Path,
                address: str | None, num_cpus: int | None) -> tuple[Any, Path, float]:
    """Run ``loop`` on ``workers`` DDP workers; return (Ray result, checkpoint folder, wall seconds).

    ``loop_config["data"]`` is put in the object store once (workers ``ray.get`` it).
    """
    ray = require_ray()
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    storage = str(storage_dir) if "://" in str(storage_dir) else str(Path(storage_dir).resolve())
    run_name = f"{name}-w{workers}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}"  # new run, no resume
    with ray_session(address, num_cpus, need_cpus=workers):
        from ray.train import RunConfig, ScalingConfig  # lazy: Ray is the optional [ray] extra
        from ray.train.torch import TorchConfig, TorchTrainer  # lazy: Ray is the optional [ray] extra

        trainer = TorchTrainer(
            loop,
            train_loop_config={**loop_config, "data": ray.put(loop_config["data"])},
            torch_config=TorchConfig(backend="gloo"),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name=run_name, storage_path=storage),
        )
        t0 = time.perf_counter()
        result = trainer.fit()
        wall = time.perf_counter() - t0
    if result.checkpoint is None:
        raise RuntimeError(f"Ray training run {run_name} finished without a checkpoint (error: {result.error})")
    if not result.metrics.get("weights_in_sync", False):
        raise RuntimeError(f"Ray training run {run_name}: the workers' weights differ after training "
                           "(DDP did not keep them in sync); the checkpoint is not trusted")
    log.info("ray training %s: %d workers, %.1fs, %s", run_name, workers, wall,
             {k: v for k, v in result.metrics.items() if k != "history"})
    return result, Path(result.checkpoint.path), wall


def train_ranker_ray(prep, variant: str, model_cfg, train_cfg, seed: int = 0, workers: int = 2,
                     storage_dir: str | Path = "runs/ray_train", address: str | None = None,
                     num_cpus: int | None = None) -> RayFit:
    """Train ranking variant ``variant`` on a ``Prepared`` split with ``workers`` DDP workers on Ray.

    ``prep`` is ``aigcrec.ranking.experiment.prepare(...)``'s result; ``model_cfg`` / ``train_cfg`` are the
    ranking section's ``ModelConfig`` / ``TrainConfig`` (the same ones single-process training reads;
    ``batch_size`` is the global batch). Checkpoints go under ``storage_dir`` (a shared path, e.g. NFS or
    ``s3://``, on a multi-node cluster). Returns the best model as a ``RankerBundle``.
    """

    if variant_config(variant, model_cfg)[0] == "popularity":
        raise ValueError("variant 'popularity' has no weights to train on Ray: use ranking.experiment.run_variant")
    columns = sorted({f.column for f in prep.spec.fields if f.kind != "vector"} | {"user_id", "item_id"})
    data = {"frame": prep.data.frame.iloc[prep.rows["train"]][columns], "spec": prep.spec, "tables": prep.tables,
            "train": prep.parts["train"], "y_train": prep.labels["train"], "val": prep.parts["val"],
            "y_val": prep.labels["val"]}
    config = {"data": data, "variant": variant, "model": model_cfg.model_dump(), "train": train_cfg.model_dump(),
              "seed": seed}
    result, ckpt, wall = _fit_on_ray(_ranker_worker, config, f"{variant}-seed{seed}", workers, storage_dir,
                                     address, num_cpus)
    return RayFit(RankerBundle.load(ckpt), dict(result.metrics), ckpt, wall)


def run_variant_ray(prep, name: str, base, train_cfg, seed: int, on_epoch=None, workers: int = 2,
                    storage_dir: str | Path = "runs/ray_train", address: str | None = None,
                    num_cpus: int | None = None):
    """``aigcrec.ranking.experiment.run_variant`` on Ray: the same arguments and the same ``RunResult``.

    The extra keywords choose the cluster. ``on_epoch(epoch, row)`` is called for each epoch of rank 0's
    history once training has finished (the workers cannot reach the caller's progress bar).
    ``train_samples_per_s`` is the throughput of all workers together.
    """

    fitted = train_ranker_ray(prep, name, base, train_cfg, seed, workers, storage_dir, address, num_cpus)
    m = fitted.metrics
    fit = FitResult(int(m["best_epoch"]), float(m["best_val_auc"]), list(m["history"]),
                    float(m["worker_samples_per_s"]) * int(m["workers"]), float(m["train_seconds"]))
    for row in fit.history:
        if on_epoch is not None:
            on_epoch(int(row["epoch"]), row)
    model = fitted.model.model
    probs = predict(model, prep.parts["test"])
    metrics = ctr_metrics(prep.labels["test"], probs, prep.users["test"])
    metrics.update(train_samples_per_s=fit.train_samples_per_s, best_epoch=float(fit.best_epoch),
                   val_auc=fit.best_val_auc)
    return RunResult(metrics, model, fit, probs)


def _mmei_worker(cfg: dict[str, Any]) -> None:
    """Per-worker loop of ``train_mmei_ray``: ``AffectModel.fit`` on this worker's shard, network under DDP."""
    import ray  # lazy: Ray is the optional [ray] extra
    import ray.train  # lazy: Ray is the optional [ray] extra

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    data = ray.get(cfg["data"])
    model, train, dev, seed = data["model"], data["train"], data["dev"], cfg["seed"]
    config = model.config  # the global batch; each worker trains with its share of it
    model.config = config.model_copy(update={"batch_size": max(1, config.batch_size // world)})
    shard = equal_shards(len(train), world, seed)[rank]
    net = model.net  # the same initial weights on every worker: the driver's untrained model
    model.net = _synced(net)
    t0 = time.perf_counter()
    try:
        model.fit(train.take(shard), dev, seed)
    finally:
        model.net, model.config = net, config  # so config.json holds the configured (global) batch
    metrics = {"rank": rank, "workers": world, "weights_in_sync": weights_in_sync(model.net),
               "epochs": len(model.history), "history": model.history,
               "temperature": model.temperature, "loop_seconds": time.perf_counter() - t0,
               "shard_rows": len(shard)}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            model.save(tmp)
            run = {"engine": "ray", "workers": world, "seed": seed, "shard_rows": len(shard),
                   "worker_batch_size": max(1, config.batch_size // world)}
            (Path(tmp) / RAY_RUN_FILE).write_text(json.dumps(run, indent=2), encoding="utf-8")
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


def train_mmei_ray(model, train, dev, seed: int = 0, workers: int = 2, storage_dir: str | Path = "runs/ray_train",
                   address: str | None = None, num_cpus: int | None = None) -> RayFit:
    """``model.fit(train, dev, seed)`` for an untrained ``AffectModel`` (e.g. ``MMEIModel``) on Ray Train.

    ``dev`` is required (single-process ``fit`` holds out 10 % of ``train`` when it is None; here every
    worker must early-stop and calibrate on the same rows). The model's ``config.batch_size`` is the
    global batch. Returns the calibrated model loaded from rank 0's checkpoint (``AffectModel.load``).
    """

    if dev is None or len(dev) == 0:
        raise ValueError("train_mmei_ray: expected a dev set (AffectData with rows) for early stopping and "
                         "calibration, got none")
    config = {"data": {"model": model, "train": train, "dev": dev}, "seed": seed}
    result, ckpt, wall = _fit_on_ray(_mmei_worker, config, f"mmei-seed{seed}", workers, storage_dir, address,
                                     num_cpus)
    return RayFit(AffectModel.load(ckpt), dict(result.metrics), ckpt, wall)


def mmei_fit_on_ray(workers: int = 2, storage_dir: str | Path = "runs/ray_train", address: str | None = None,
                    num_cpus: int | None = None):
    """A ``fit(model, train, dev, seed) -> AffectModel`` running ``train_mmei_ray`` on this cluster.

    It is the ``fit`` hook of ``aigcrec.affect.tasks.train_world_mmei`` (``aigcrec train mmei --engine ray``):
    the same model, config and data as single-process training, trained by ``workers`` DDP workers.
    """

    def fit(model, train, dev, seed: int):
        fitted = train_mmei_ray(model, train, dev, seed, workers, storage_dir, address, num_cpus)
        log.info("ray MMEI training: checkpoint %s (%d workers, %.1fs)", fitted.checkpoint_dir, workers,
                 fitted.wall_seconds)
        return fitted.model

    return fit
