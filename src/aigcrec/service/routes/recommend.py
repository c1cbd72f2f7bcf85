"""POST /v1/recommend and POST /v1/affect."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from aigcrec.service.api_models import AffectOut, AffectRequest, RecommendRequest, RecommendResponse
from aigcrec.service.routes.base import PROBLEM, GuardedRoute, Service

router = APIRouter(route_class=GuardedRoute, tags=["recommend"])
_ERRORS = {413: PROBLEM, 415: PROBLEM, 422: PROBLEM, 503: PROBLEM}


@router.post("/v1/recommend", response_model=RecommendResponse, responses=_ERRORS)
async def recommend(req: RecommendRequest, service: Service) -> Response:
    """Affect (from the signals, or the ``stated`` state) -> FAISS candidates -> UMAIR-FPS ranking ->
    diversity re-rank."""
    body = await service.recommend(req.user_id, req.k, req.signals, req.exclude_seen, req.context, req.stated)
    # Serialised by pydantic's core directly: FastAPI would validate and encode the model again.
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/v1/affect", response_model=AffectOut, responses=_ERRORS)
async def affect(req: AffectRequest, service: Service) -> AffectOut:
    """The emotion and intent read from the signals, without recommendations."""
    return await service.affect(req.signals)
