"""Commands of the affect stage: ``aigcrec train mmei`` and ``aigcrec benchmark affect``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import (
    ConfigOpt,
    OutOpt,
    SeedOpt,
    VerboseOpt,
    app_config,
    benchmark_app,
    fail,
    train_app,
)
from aigcrec.cli.distributed import AddressOpt, EngineOpt, WorkersOpt, check_engine
from aigcrec.affect.recipes import task_config
from aigcrec.distributed.cluster import RayUnavailable

log = logging.getLogger("aigcrec.affect")

CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Where encoded features are cached "
                                                                      "(default: <out>/cache).")]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @train_app.command("mmei")
    def train_mmei(
        world: Annotated[Path, typer.Option("--world", "-w", help="World folder (aigcrec world generate).")],
        config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None, cache_dir: CacheOpt = None,
        verbose: VerboseOpt = False, engine: EngineOpt = "local", address: AddressOpt = None,
        workers: WorkersOpt = None,
    ) -> None:
        """Train MMEI on a world's affect sessions (train split), calibrate on dev, evaluate on test.

        Writes <out>/mmei/ (config.json, weights.pt), <out>/mmei_metrics.json and <out>/problems.csv.
        ``--engine ray`` runs the same training as DDP on a Ray cluster: ``--workers`` processes (default
        ``distributed.train_workers``), checkpoints under ``distributed.storage_dir`` (default <out>/ray_train),
        ``--address`` (default ``distributed.address``; none: a local cluster for this command).
        """
        from aigcrec.affect.benchmark import split_data
        from aigcrec.affect.tasks import train_world_mmei
        from aigcrec.affect.tasks import fusion_data, with_world_face_net

        cfg = app_config(config, seed, out, verbose)
        if not world.is_dir():
            fail(f"--world: expected a world folder, got {world}")
        out_dir = Path(cfg.out)
        fit = None
        if check_engine(engine) == "ray":
            from aigcrec.distributed.train import mmei_fit_on_ray

            dist = cfg.distributed
            workers = workers or dist.train_workers
            fit = mmei_fit_on_ray(workers, dist.storage_under(out_dir), address or dist.address, dist.num_cpus)
        out_dir.mkdir(parents=True, exist_ok=True)
        cache = cache_dir or out_dir / "cache"
        affect = with_world_face_net(world, cfg.affect, cache)  # the model records the face encoder it read
        data, split, problems = fusion_data(world, affect, cache)
        problems.to_csv(out_dir / "problems.csv", index=False)
        try:
            model, metrics = train_world_mmei(split_data(data, split), affect, cfg.seed, fit=fit)
        except RayUnavailable as exc:
            fail(str(exc), 2)
        metrics["engine"] = {"name": engine, "workers": workers if fit is not None else 1}
        model.save(out_dir / "mmei")
        (out_dir / "mmei_metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        typer.echo(json.dumps(metrics["test"], indent=2))

    @benchmark_app.command("affect")
    def benchmark_affect(
        task: Annotated[str, typer.Option("--task", "-t", help="face-emotion, text-emotion, intent or fusion.")],
        data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="Dataset folder (FER2013, MELD, CLINC150 "
                                                                       "or a world).")],
        seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds (seed, seed+1, ...).")] = 3,
        config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None, cache_dir: CacheOpt = None,
        verbose: VerboseOpt = False,
        recipe: Annotated[bool, typer.Option("--recipe/--no-recipe", help="Start from the task's measured recipe "
                                             "(aigcrec.affect.recipes; face-emotion, text-emotion, intent), under "
                                             "what --config sets; --no-recipe: the config's class defaults.")] = True,
        mmei_paper: Annotated[bool, typer.Option("--mmei-paper", help="fusion: also train mmei_paper, the BERT-based "
                                                 "cross-modal transformer (slow; affect.mmei.paper.in_fusion_benchmark)."
                                                 )] = False,
    ) -> None:
        """MMEI against unimodal, late- and early-fusion baselines; writes <out>/affect.json and affect.md.

        The real-data tasks default to their measured recipes (``aigcrec.affect.recipes.REAL_DATA_RECIPES``,
        recorded in affect.json as ``recipe``); the ``affect`` fields a ``--config`` sets win over them.
        """
        from aigcrec.affect.tasks import TASKS

        cfg = app_config(config, seed, out, verbose)
        if task not in TASKS:
            fail(f"--task: expected one of {', '.join(TASKS)}, got {task!r}")
        if not data_dir.is_dir():
            fail(f"--data-dir: expected a folder, got {data_dir}")
        from aigcrec.affect.runner import run_benchmark

        affect, applied = task_config(task, cfg.affect, recipe)
        if mmei_paper:
            if task != "fusion":
                fail(f"--mmei-paper: expected --task fusion, got {task!r}")
            affect = affect.model_copy(deep=True)
            affect.mmei.paper.in_fusion_benchmark = True
        if applied is not None:
            log.info("%s: the measured recipe %s", task, json.dumps(applied, sort_keys=True))
        out_dir = Path(cfg.out)
        path = run_benchmark(task, data_dir, affect, [cfg.seed + k for k in range(seeds)], out_dir,
                             cache_dir or out_dir / "cache", recipe=applied)
        typer.echo(str(path))
