"""Commands of the service stage: ``aigcrec serve`` and ``aigcrec export events``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, VerboseOpt, app_config, export_app, fail
from aigcrec.cli.distributed import AddressOpt, EngineOpt, check_engine

log = logging.getLogger("aigcrec.service")


def _latest_paths(cfg, affect: Optional[Path] = None):
    """The latest demo's (or build's) artifacts under ``OUT/latest``; say how to make them when there are none."""
    from aigcrec.service.artifacts import MANIFEST_NAME

    latest = Path(cfg.out) / "latest"
    if not (latest / MANIFEST_NAME).is_file():
        fail(
            f"no models to serve: {latest / MANIFEST_NAME} does not exist. Build them with `make demo` "
            "(the embedded world), or for your own catalog `aigcrec build --catalog DIR --out M` and then "
            "`aigcrec serve --models M`",
            2,
        )
    return _paths(latest, None, affect)


def _paths(models: Path, catalog: Optional[Path] = None, affect: Optional[Path] = None):
    from aigcrec.service.assemble import ServicePaths

    try:
        return ServicePaths.from_models(models, catalog, affect)
    except FileNotFoundError as exc:
        fail(str(exc), 2)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @app.command()
    def serve(
        catalog: Annotated[
            Optional[Path],
            typer.Option(
                "--catalog",
                help="Catalog folder in any layout the loaders read (default: the one the models were built on).",
            ),
        ] = None,
        models: Annotated[
            Optional[Path],
            typer.Option(
                "--models",
                help="An artifacts.json (aigcrec build, aigcrec demo), a folder with one, or a folder with "
                "features/, ranker/ (optionally mmei/, content/) together with --catalog.",
            ),
        ] = None,
        affect: Annotated[
            Optional[Path],
            typer.Option("--affect", help="A saved MMEI model folder (default: the models' mmei/, if any)."),
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

        With no --catalog/--models it serves OUT/latest (the latest `aigcrec demo` run) in demo mode: without
        an API key, writes are accepted from loopback clients only. For your own catalog:
        `aigcrec build --catalog DIR --out M`, then `aigcrec serve --models M`.
        """
        cfg = app_config(config, seed, out, verbose)
        svc = cfg.service
        if host is not None:
            svc.host = host
        if port is not None:
            svc.port = port
        if workers is not None:
            svc.workers = workers
        if models is None and catalog is not None:
            fail("--catalog needs --models M (build M with `aigcrec build --catalog DIR --out M`)", 2)
        if models is None:
            paths = _latest_paths(cfg, affect)
            svc.demo_mode = True
        else:
            paths = _paths(models, catalog, affect)
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
            catalog_dir=str(paths.catalog_dir),
            feature_store=str(paths.feature_store),
            ranker_dir=str(paths.ranker_dir),
            db_path=str(db_path),
            mmei_dir=None if paths.mmei_dir is None else str(paths.mmei_dir),
            content_dir=None if paths.content_dir is None else str(paths.content_dir),
            verbose=verbose,
        )
        try:
            run("aigcrec.service.process_app:real_app", spec, svc)
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
