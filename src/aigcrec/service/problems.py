"""Errors as RFC 7807 ``application/problem+json``: type URI, title, status, detail; never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("aigcrec.service")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://aigcrec.dev/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document (``kind`` names its type URI)."""

    def __init__(
        self, status: int, kind: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = status, kind, title, detail, extra
        self.headers = headers

    def response(self, instance: str | None = None) -> JSONResponse:
        return problem_response(
            self.status, self.kind, self.title, self.detail, instance, self.headers, **self.extra
        )


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # pydantic may put exceptions or bytes in "ctx"/"input": keep what is plain and short.
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors[:20]
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error (ours, validation, routing, unexpected) to a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(list(exc.errors()))
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]) or "invalid request"
        return problem_response(
            422,
            "invalid-request",
            "The request does not match the schema",
            detail,
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
            exc.status_code, "HTTP error"
        )
        return problem_response(
            exc.status_code,
            "too-large" if exc.status_code == 413 else f"http-{exc.status_code}",  # one type per meaning
            title,
            str(exc.detail),
            request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s on %s: %s", type(exc).__name__, request.url.path, exc)
        return problem_response(
            500,
            "internal",
            "Internal server error",
            "the server failed to handle this request; it has been logged",
            request.url.path,
        )
