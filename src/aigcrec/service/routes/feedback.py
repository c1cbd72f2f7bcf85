"""POST /v1/feedback (a write)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from aigcrec.service.api_models import FeedbackAck, FeedbackBatch, FeedbackIn
from aigcrec.service.routes.base import PROBLEM, GuardedRoute, IdempotencyKey, Service, stored_answer, writes

router = APIRouter(route_class=GuardedRoute, tags=["feedback"])


@router.post(
    "/v1/feedback",
    response_model=FeedbackAck,
    responses={c: PROBLEM for c in (401, 403, 408, 413, 422, 503)},
)
@writes(body_limit="max_feedback_bytes", count=("events", "max_feedback_batch"))
async def feedback(req: FeedbackIn, service: Service, idempotency: IdempotencyKey) -> Response:
    """Append events durably (acknowledged after the commit); unknown items are reported and skipped."""
    events = req.events if isinstance(req, FeedbackBatch) else [req]
    return stored_answer(*await service.feedback(events, idempotency))
