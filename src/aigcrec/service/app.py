"""The FastAPI app: the routers of ``service/routes/`` over a ``ServiceFacade``, with the request guard,
metrics, problem+json errors and the web demo's static files.

``create_app(state)`` wraps a ready ``ServiceState``; ``aigcrec serve`` builds the state from the demo's
artifacts (or ``--catalog``/``--models``) and runs it under uvicorn (``service/workers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from aigcrec.service.facade import ServiceFacade, affect_out
from aigcrec.service.guards import RequestGuard
from aigcrec.service.metrics import MetricsMiddleware
from aigcrec.service.problems import install_problem_handlers
from aigcrec.service.routes import ROUTERS
from aigcrec.service.routes.base import LOOPBACK_HOSTS
from aigcrec.service.routes.ops import STATIC
from aigcrec.service.state import ServiceState

__all__ = ["LOOPBACK_HOSTS", "affect_out", "create_app"]

log = logging.getLogger("aigcrec.service")


def create_app(state: ServiceState) -> FastAPI:
    """The HTTP app around a ready ``ServiceState``."""
    cfg = state.config
    service = ServiceFacade(state)

    async def follow_store() -> None:
        while True:
            await asyncio.sleep(cfg.sync_interval_s)
            try:
                await service.sync()
            except Exception:  # a transient SQLite error must not stop the follower
                log.exception("following the store failed; retrying in %.2f s", cfg.sync_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.api_key:
            log.info("writes need the API key (Authorization: Bearer ...)")
        elif cfg.demo_mode:
            log.warning("demo mode: no API key set; writes are accepted from loopback clients only")
        else:
            log.warning("no API key set (AIGCREC_API_KEY or service.api_key): write endpoints are refused")
        follower = asyncio.create_task(follow_store())
        state.ready = True
        yield
        state.ready = False  # /readyz turns 503 while uvicorn drains in-flight requests
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        service.close()

    app = FastAPI(
        title="aigcrec",
        version="0.1.0",
        lifespan=lifespan,
        description="Recommendations of AI-generated content from what it is, what users like, "
        "and how they feel now (UMAIR-FPS ranking with MMEI affect context).",
    )
    install_problem_handlers(app)
    app.add_middleware(RequestGuard, limits=cfg.limits)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.state.service = state
    app.state.facade = service
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
