"""What each ``aigcrec serve`` server process runs: ``real_app``, the uvicorn factory that loads the trained
models and the catalog (``open_real_state``) from the ``ServeSpec`` that ``workers.run`` passed.

Apart from ``workers.py`` so that the launcher, and the supervisor process that imports it, load no models.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aigcrec.logs import setup_logging
from aigcrec.service.app import LOOPBACK_HOSTS, create_app
from aigcrec.service.assemble import ServicePaths, open_real_state
from aigcrec.service.config import ServingConfig
from aigcrec.service.workers import ServeSpec, current_spec, limit_threads

log = logging.getLogger("aigcrec.service")


def real_app():
    """uvicorn factory of ``aigcrec serve``: the trained models and the catalog (``open_real_state``)."""
    spec = ServeSpec(**current_spec())
    setup_logging(spec.verbose)
    cfg = ServingConfig.from_dump(spec.config)
    svc = cfg.service
    limit_threads(svc.torch_threads)
    opt = {k: Path(v) if v else None for k, v in (("mmei_dir", spec.mmei_dir), ("content_dir", spec.content_dir))}
    paths = ServicePaths(Path(spec.catalog_dir), Path(spec.feature_store), Path(spec.ranker_dir), **opt)
    log.info("process %d: loading catalog %s and models (db %s)", os.getpid(), paths.catalog_dir, spec.db_path)
    state = open_real_state(cfg, paths, Path(spec.db_path))
    if svc.demo_mode and not state.api_key:
        where = "loopback clients only" if svc.host in LOOPBACK_HOSTS else "nobody (not bound to loopback)"
        log.warning("demo mode without an API key: writes accepted from %s", where)
    log.info("process %d serving on http://%s:%d  (docs /docs, demo /)", os.getpid(), svc.host, svc.port)
    return create_app(state)
