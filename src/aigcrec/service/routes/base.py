"""What every route shares: the route class that reads bodies strictly and authorises writes before
reading them, and the dependencies (the service facade, the Idempotency-Key).

``GuardedRoute`` runs before FastAPI parses anything: for a write endpoint (``@writes(...)``) it checks
the API key first, so an unauthorised client's body is never read; then it reads the body up to the
endpoint's byte budget (413 as soon as the budget is passed, while the body streams in; for feedback also
at the first event over the batch cap, counted by ``guards.ArrayCounter`` as it streams); then FastAPI
parses it with ``StrictRequest.json``: UTF-8 only, duplicate keys and NaN/Infinity refused (422).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from aigcrec.service.facade import ServiceFacade, replay_body
from aigcrec.service.guards import ArrayCounter, too_large
from aigcrec.service.problems import Problem
from aigcrec.service.store import Idempotency

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
PROBLEM = {"model": dict, "content": {"application/problem+json": {}}}
REPLAYED_HEADER = "Idempotent-Replayed"


def writes(body_limit: str = "max_body_bytes", count: Optional[tuple[str, str]] = None) -> Callable:
    """Mark an endpoint as a write: API key checked before its body, which may hold at most
    ``service.limits.<body_limit>`` bytes; ``count=(key, limit)`` also caps the elements of the body's
    top-level array ``key`` at ``service.limits.<limit>``, counted while the body streams in."""

    def mark(endpoint: Callable) -> Callable:
        endpoint.aigcrec_write_body_limit = body_limit  # read by GuardedRoute
        endpoint.aigcrec_write_count = count
        return endpoint

    return mark


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"duplicate key {key!r}")
        doc[key] = value
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes) -> Any:
    """Parse a JSON body; raises ``json.JSONDecodeError`` (FastAPI's 422) for anything but plain JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"expected UTF-8 ({exc.reason})", "", exc.start) from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), text, 0) from None


class StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


def authorise(request: Request, service: ServiceFacade) -> None:
    """Bearer API key for writes; without a configured key, only loopback clients in demo mode."""
    if service.api_key:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), service.api_key.encode()):
            raise Problem(
                401, "unauthorized", "Unauthorized", "write endpoints need 'Authorization: Bearer <AIGCREC_API_KEY>'"
            )
        return
    host = request.client.host if request.client else ""
    if not (service.config.demo_mode and host in LOOPBACK_HOSTS):
        raise Problem(
            403,
            "writes-disabled",
            "Writes disabled",
            "no API key is configured (AIGCREC_API_KEY or service.api_key); writes are refused",
        )


async def read_body(request: Request, limit: int, counter: Optional[ArrayCounter] = None) -> bytes:
    """The whole body, refused with 413 as soon as more than ``limit`` bytes are declared or have arrived
    (or, with ``counter``, as soon as its array holds one element too many)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large("request body", limit)
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large("request body", limit)
        if counter is not None:
            counter.feed(chunk)
        chunks.append(chunk)
    request._body = b"".join(chunks)  # starlette's cache: FastAPI's own read returns it
    return request._body


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        body_limit = getattr(self.endpoint, "aigcrec_write_body_limit", None)
        count = getattr(self.endpoint, "aigcrec_write_count", None)

        reads_body = self.body_field is not None

        async def guarded(request: Request) -> Response:
            request = StrictRequest(request.scope, request.receive)
            service = get_service(request)
            if body_limit is not None:
                authorise(request, service)
            if reads_body:  # here, not in FastAPI's handler, which would turn a 408/413 into a 400
                counter = None if count is None else ArrayCounter(count[0], getattr(service.limits, count[1]), count[0])
                await read_body(request, getattr(service.limits, body_limit or "max_body_bytes"), counter)
            return await handler(request)

        return guarded


def get_service(request: Request) -> ServiceFacade:
    return request.app.state.facade


Service = Annotated[ServiceFacade, Depends(get_service)]


def idempotency(
    request: Request,
    key: Annotated[
        Optional[str],
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="Any unique string (e.g. a UUID) per logical write: a retry with the same key "
            "and body is answered with the stored answer (header Idempotent-Replayed: true) and writes "
            "nothing; the same key with another body is a 422.",
        ),
    ] = None,
) -> Optional[Idempotency]:
    if key is None:
        return None
    digest = hashlib.sha256(request._body if hasattr(request, "_body") else b"").hexdigest()
    return Idempotency(key, request.scope["route"].path, digest)


IdempotencyKey = Annotated[Optional[Idempotency], Depends(idempotency)]


def stored_answer(status: int, body: str, replayed: bool) -> Response:
    """A write's JSON answer; a replay says so in its body (``replayed``) and header."""
    if replayed:
        return Response(replay_body(body), status, media_type="application/json", headers={REPLAYED_HEADER: "true"})
    return Response(body, status, media_type="application/json")
