"""Commands of the distributed stage, and the ``--engine/--address/--workers`` options of the stage commands.

``aigcrec encode``, ``aigcrec train ranker`` and ``aigcrec serve`` take ``EngineOpt``, ``AddressOpt`` and
``WorkersOpt`` and hand the work to ``aigcrec.distributed`` when ``--engine ray`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, VerboseOpt, app_config, benchmark_app, fail

Engine = Literal["local", "ray"]
EngineOpt = Annotated[str, typer.Option("--engine", help="local: this process; ray: a Ray cluster "
                                                         "(install the 'ray' extra).")]
AddressOpt = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster address ('auto', 'ray://head:10001'); default: start a local cluster.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Ray workers (encoder actors / DDP workers; default: 2, or for train mmei the "
                             "config's distributed.train_workers).")]


def check_engine(engine: str) -> Engine:
    """``engine`` if it is 'local' or 'ray', else exit 2 saying what was expected."""
    if engine not in ("local", "ray"):
        fail(f"--engine: expected 'local' or 'ray', got {engine!r}", 2)
    return engine  # type: ignore[return-value]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @benchmark_app.command("ray")
    def benchmark_ray(
        size: Annotated[str, typer.Option("--size", help="World size (tiny, small, default).")] = "tiny",
        workers: Annotated[
            list[int] | None, typer.Option("--workers", help="Worker counts to compare (repeat; default 1 2).")
        ] = None,
        seeds: Annotated[
            list[int] | None, typer.Option("--seeds", help="Training seeds (repeat; default 0 1 2).")
        ] = None,
        requests: Annotated[int, typer.Option("--requests", min=10, help="Requests per serving measurement.")] = 100,
        clients: Annotated[int, typer.Option("--clients", min=1, help="Concurrent clients (serving).")] = 4,
        batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Training batch (global).")] = 128,
        max_epochs: Annotated[int, typer.Option("--max-epochs", min=1)] = 8,
        work_dir: Annotated[
            Path, typer.Option("--work-dir", help="World, feature stores, checkpoints (reused).")
        ] = Path("runs/cache/ray-benchmark"),
        config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None, verbose: VerboseOpt = False,
    ) -> None:
        """Local engine vs Ray with 1 and 2 workers: encode, train UMAIR-FPS and MMEI (quality, time), serve.

        Writes ray_scaleout.json and ray_scaleout.md to --out (default benchmarks/results/ray).
        """
        cfg = app_config(config, seed, out, verbose)
        from aigcrec.distributed.benchmark import run_benchmark
        from aigcrec.distributed.cluster import RayUnavailable, require_ray

        try:
            require_ray()
        except RayUnavailable as exc:
            fail(str(exc), 2)
        target = Path(out) if out is not None else Path("benchmarks/results/ray")
        run_benchmark(target, work_dir, size=size, world_seed=cfg.seed, seeds=seeds or [0, 1, 2],
                      worker_counts=sorted(set(workers or [1, 2])), serve_requests=requests, clients=clients,
                      batch_size=batch_size, max_epochs=max_epochs, config=cfg)
        typer.echo(f"results: {target / 'ray_scaleout.md'}", err=True)
