"""The Ray Serve application builder of ``serve run`` and KubeRay's ``RayService``.

It sits in the top layer beside the command line (it reads a YAML config into ``AppConfig``), so that
``aigcrec.distributed`` stays an adapter below it: ``serve run aigcrec.serve_app:app_builder catalog=... models=...``.
"""

from __future__ import annotations

from pathlib import Path

from aigcrec.config import load_config
from aigcrec.distributed.serve import real_application
from aigcrec.service.assemble import ServicePaths

BUILDER_ARGS = {"catalog": True, "models": True, "db": False, "config": False}  # name -> required


def app_builder(args: dict[str, str]):
    """Application builder for ``serve run`` and KubeRay's ``RayService``.

    ``import_path: aigcrec.serve_app:app_builder`` with ``args``: ``catalog`` and ``models`` (the
    folders of ``aigcrec serve --catalog/--models``), optionally ``db`` (the SQLite file, default
    ``<models>/service.sqlite``) and ``config`` (a YAML config file: its ``service`` and ``distributed``
    sections apply). The paths must be readable where the replicas run (shared storage).
    """
    missing = sorted(k for k, required in BUILDER_ARGS.items() if required and not args.get(k))
    unknown = sorted(set(args) - set(BUILDER_ARGS))
    if missing or unknown:
        raise ValueError(f"aigcrec app_builder: expected args catalog, models (db, config optional); "
                         f"missing {missing}, unknown {unknown}")
    config = load_config(args.get("config"))
    paths = ServicePaths.from_dirs(args["catalog"], args["models"])
    db = Path(args.get("db") or Path(args["models"]) / "service.sqlite")
    return real_application(config, paths, db)
