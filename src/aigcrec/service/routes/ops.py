"""Liveness, readiness, metrics and the web demo."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse

from aigcrec.service.api_models import Health
from aigcrec.service.problems import Problem
from aigcrec.service.routes.base import PROBLEM, GuardedRoute, Service

router = APIRouter(route_class=GuardedRoute)
STATIC = files("aigcrec.service").joinpath("static")


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, tags=["ops"], responses={503: PROBLEM})
async def readyz(service: Service) -> Health:
    if not service.ready:
        raise Problem(503, "not-ready", "Not ready", "the server is starting or shutting down")
    return service.health()


@router.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
async def metrics(service: Service) -> PlainTextResponse:
    return PlainTextResponse(service.metrics_text(), media_type="text/plain; version=0.0.4")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    return HTMLResponse(STATIC.joinpath("index.html").read_text(encoding="utf-8"))
