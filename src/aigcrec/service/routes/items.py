"""POST /v1/items (a write), GET /v1/items/{id} and its image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from aigcrec.service.api_models import Id, ItemCreated, ItemIn, ItemOut
from aigcrec.service.media import sniff_image
from aigcrec.service.problems import Problem
from aigcrec.service.routes.base import PROBLEM, GuardedRoute, IdempotencyKey, Service, stored_answer, writes

router = APIRouter(route_class=GuardedRoute, tags=["catalog"])
ItemId = Annotated[Id, PathParam(description="The item's id.")]


@router.post(
    "/v1/items",
    response_model=ItemCreated,
    status_code=201,
    responses={c: PROBLEM for c in (401, 403, 408, 409, 413, 415, 422, 503)},
)
@writes()
async def add_item(req: ItemIn, service: Service, idempotency: IdempotencyKey) -> Response:
    """Encode a new illustration and make it retrievable at once (no restart)."""
    return stored_answer(*await service.ingest(req, idempotency))


@router.get("/v1/items/{item_id}", response_model=ItemOut, responses={404: PROBLEM, 422: PROBLEM})
async def get_item(item_id: ItemId, service: Service) -> ItemOut:
    item = await service.item(item_id)
    if item is None:
        raise Problem(404, "not-found", "Not found", f"item_id: no item {item_id!r}")
    return item


@router.get(
    "/v1/items/{item_id}/image", responses={404: PROBLEM, 422: PROBLEM}, response_class=Response
)
async def get_item_image(item_id: ItemId, service: Service) -> Response:
    path, data = await service.item_image(item_id)
    if path is not None:
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})
    return Response(
        data, media_type=sniff_image(data) or "application/octet-stream", headers={"Cache-Control": "max-age=3600"}
    )
