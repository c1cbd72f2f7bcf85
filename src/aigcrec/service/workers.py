"""Run the HTTP app under uvicorn in ``service.workers`` processes that share one port and one SQLite file.

uvicorn spawns the processes (spawn, not fork: torch, FAISS and SQLite handles do not survive a fork) and
the kernel spreads connections over them. Each process builds its own ``ServiceState`` from the same
``ServeSpec`` (passed in an environment variable, so it reaches spawned processes) and follows the shared
SQLite log (``ServiceState.changes`` / ``apply``); the first to start imports the catalog, atomically.
A Python process runs one request at a time, so one process per CPU core is what lets the model-bound
request path use every core. With ``workers: 1`` the app runs in the calling process.

This module only launches processes, so it stays light (no torch: the supervisor process imports it); the
factory of ``aigcrec serve`` that loads the models is ``service/process_app.py: real_app``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import threadpoolctl
import uvicorn

from aigcrec.service.protocol import LIMITS_ENV

log = logging.getLogger("aigcrec.service")

SPEC_ENV = "AIGCREC_SERVE_SPEC"


@dataclass(frozen=True)
class ServeSpec:
    """Everything a server process needs to build its state: the config and where the artifacts are."""

    config: dict[str, Any]  # AppConfig.model_dump(mode="json")
    catalog_dir: str
    feature_store: str
    ranker_dir: str
    db_path: str
    mmei_dir: Optional[str] = None
    content_dir: Optional[str] = None
    verbose: bool = False


class ServeError(RuntimeError):
    """A server process could not start (its message says why); the others were stopped."""


def run(factory: str, spec: ServeSpec | dict[str, Any], service_config) -> None:
    """Serve ``factory`` (``"module:function"``, called once per process) with uvicorn.

    ``spec`` is JSON-serialisable and read back in each process with ``current_spec()``. A process whose
    factory fails stops them all (uvicorn's supervisor would restart it forever) and this raises
    ``ServeError`` with the reason.
    """
    svc = service_config
    limits = svc.limits
    # Written only by a process that fails to start, and removed here: a kill -9 leaves nothing behind.
    failure = Path(tempfile.gettempdir()) / f"aigcrec-serve-{os.getpid()}-failure.txt"
    failure.unlink(missing_ok=True)
    os.environ[SPEC_ENV] = json.dumps({
        "factory": factory, "workers": svc.workers, "failure_file": str(failure),
        "spec": asdict(spec) if isinstance(spec, ServeSpec) else spec})
    os.environ[LIMITS_ENV] = json.dumps({"header_timeout_s": limits.header_timeout_s})
    if svc.workers > 1:
        log.info("starting %d server processes", svc.workers)
    try:
        uvicorn.run(
            "aigcrec.service.workers:_guarded_app",
            factory=True,
            workers=svc.workers,
            host=svc.host,
            port=svc.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(svc.graceful_shutdown_s),
            http="aigcrec.service.protocol:GuardedH11Protocol",
            h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # used as a float
            limit_concurrency=limits.max_connections,
        )
    except SystemExit:
        if not failure.is_file():
            raise
    if failure.is_file():
        message = failure.read_text(encoding="utf-8")
        failure.unlink(missing_ok=True)
        raise ServeError(message)


def _envelope() -> dict[str, Any]:
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        raise RuntimeError(f"{SPEC_ENV} is not set: start server processes through aigcrec.service.workers.run")
    return json.loads(raw)


def current_spec() -> dict[str, Any]:
    """The ``spec`` given to ``run``, in a server process."""
    return _envelope()["spec"]


def _guarded_app():
    """What uvicorn calls in each process: the factory named in the envelope, or a clean stop of all."""
    env = _envelope()
    module, _, name = env["factory"].partition(":")
    try:
        return getattr(importlib.import_module(module), name)()
    except Exception as exc:  # noqa: BLE001 - any failure to build the app stops the server
        message = f"server process {os.getpid()} could not start: {type(exc).__name__}: {exc}"
        log.error("%s", message)
        Path(env["failure_file"]).write_text(message, encoding="utf-8")
        if env["workers"] > 1:
            os.kill(os.getppid(), signal.SIGTERM)  # the supervisor: it shuts the other processes down
        raise SystemExit(1) from None


def limit_threads(threads: int) -> None:
    """Intra-op threads of everything that computes inside a server process: torch, OpenCV (face detector)
    and the BLAS libraries numpy and OpenCV carry. With one process per core more threads only contend, and
    idle OpenBLAS threads busy-wait after each call: at 10 requests/s with voice and face they burned
    131 ms of CPU per request against 41 ms under full load (benchmarks/load_service.py)."""
    import cv2  # lazy: OpenCV (about a second to import) loads only on the paths that use it

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    threadpoolctl.threadpool_limits(limits=threads)
