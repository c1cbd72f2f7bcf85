"""Commands of the service stage: ``aigcrec serve`` and ``aigcrec export events``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, VerboseOpt, app_config, export_app, fail
from aigcrec.distributed.cli import AddressOpt, EngineOpt, check_engine

log = logging.getLogger("aigcrec.service")


def _demo_paths(cfg):
    """The latest demo's artifacts; run the demo first when there is none."""
    from aigcrec.service.assemble import ServicePaths

    artifacts = Path(cfg.out) / "latest" / "artifacts.json"
    if not artifacts.is_file():
        from importlib.resources import files

        from aigcrec.config import load_config
        from aigcrec.demo import run_demo

        log.info("no %s: running the demo first to train the models", artifacts)
        demo_cfg = load_config(files("aigcrec").joinpath("configs/demo.yaml"), seed=cfg.seed, out=cfg.out)
        run_demo(demo_cfg)
    return ServicePaths.from_artifacts(artifacts)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @app.command()
    def serve(
        catalog: Annotated[
            Optional[Path], typer.Option("--catalog", help="World folder (items.csv + images).")
        ] = None,
        models: Annotated[
            Optional[Path],
            typer.Option(
                "--models",
                help="Folder with features/, ranker/ (optionally mmei/, content/) or an artifacts.json.",
            ),
        ] = None,
        host: Annotated[
            Optional[str], typer.Option("--host", help="Bind address (default service.host).")
        ] = None,
        port: Annotated[Optional[int], typer.Option("--port", help="Port (default service.port).")] = None,
        db: Annotated[
            Optional[Path], typer.Option("--db", help="SQLite file (created on first start).")
        ] = None,
        config: ConfigOpt = None,
        seed: SeedOpt = None,
        out: OutOpt = None,
        verbose: VerboseOpt = False,
        workers: Annotated[
            Optional[int],
            typer.Option("--workers", min=1, help="Server processes (default service.workers; ~1 per core)."),
        ] = None,
        engine: EngineOpt = "local",
        address: AddressOpt = None,
    ) -> None:
        """Serve recommendations over HTTP (API at /v1, docs at /docs, web demo at /).

        With no --catalog/--models it serves the embedded world with the models of the latest demo run
        (running the demo first if there is none) in demo mode: without an API key, writes are accepted
        from loopback clients only.
        """
        cfg = app_config(config, seed, out, verbose)
        svc = cfg.service
        if host is not None:
            svc.host = host
        if port is not None:
            svc.port = port
        if workers is not None:
            svc.workers = workers
        from aigcrec.service.assemble import ServicePaths

        try:
            if catalog is None and models is None:
                paths = _demo_paths(cfg)
                svc.demo_mode = True
            elif catalog is not None and models is not None:
                paths = ServicePaths.from_dirs(catalog, models)
            else:
                fail("give both --catalog and --models, or neither (to serve the demo's world and models)", 2)
                return
        except FileNotFoundError as exc:
            fail(str(exc), 2)
            return
        db_path = db or svc.db_path or Path(cfg.out) / "service" / f"service-{paths.digest()}.sqlite"
        if check_engine(engine) == "ray":
            from aigcrec.distributed.cluster import RayUnavailable
            from aigcrec.distributed.serve import serve_on_ray

            try:
                serve_on_ray(cfg, paths, Path(db_path), address=address)
            except RayUnavailable as exc:
                fail(str(exc), 2)
            return
        from aigcrec.service.workers import ServeError, ServeSpec, run

        spec = ServeSpec(
            config=cfg.model_dump(mode="json"),
            world_dir=str(paths.world_dir),
            feature_store=str(paths.feature_store),
            ranker_dir=str(paths.ranker_dir),
            db_path=str(db_path),
            mmei_dir=None if paths.mmei_dir is None else str(paths.mmei_dir),
            content_dir=None if paths.content_dir is None else str(paths.content_dir),
            verbose=verbose,
        )
        try:
            run("aigcrec.service.workers:real_app", spec, svc)
        except ServeError as exc:
            fail(str(exc), 1)

    @export_app.command("events")
    def export_events(
        db: Annotated[Path, typer.Option("--db", help="The service's SQLite file.")],
        config: ConfigOpt = None,
        seed: SeedOpt = None,
        out: OutOpt = None,
        verbose: VerboseOpt = False,
    ) -> None:
        """Write the event log as interactions (user_id, item_id, label, timestamp, session_id) Parquet."""
        cfg = app_config(config, seed, out, verbose)
        from aigcrec.service.store import interactions_from_db

        try:
            frame = interactions_from_db(db)
        except FileNotFoundError as exc:
            fail(str(exc), 2)
            return
        target = Path(cfg.out) / "interactions.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target, index=False)
        log.info("%d interactions (%d positive) -> %s", len(frame), int(frame["label"].sum()), target)
