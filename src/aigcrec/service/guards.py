"""The ASGI guard in front of the app: what one request may take of the connection, enforced per request.

``RequestGuard`` refuses too many or too large headers (431; h11 itself closes a connection whose
headers grow past ``max_header_bytes`` before they are complete) and a declared body over ``max_body_bytes`` (413)
before the app runs, counts the body while it streams in (413 past the limit, whatever the framing), gives
the body ``body_timeout_s`` to arrive (408: a Content-Length never sent, a chunk declared larger than it
is, a slow sender) and the whole request ``request_timeout_s`` (503). Each of these answers closes the
connection. What happens before a request's headers are complete (header size, slow headers, idle
keep-alive) is the uvicorn protocol's part (``service/protocol.py``).
"""

from __future__ import annotations

import asyncio
import logging

from aigcrec.service.config import InputLimits
from aigcrec.service.problems import Problem

log = logging.getLogger("aigcrec.service")

CLOSE = {"Connection": "close"}


class BodyTooSlow(Problem):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            408,
            "timeout",
            "Request body too slow",
            f"request body: expected all of it within {seconds:g} s of the headers",
            headers=CLOSE,
        )


def too_large(what: str, limit: int) -> Problem:
    return Problem(
        413, "too-large", "Payload too large", f"{what}: expected at most {limit} bytes", headers=CLOSE
    )


class RequestGuard:
    """Pure ASGI middleware enforcing ``service.limits``' per-request header, body and time limits."""

    def __init__(self, app, limits: InputLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        headers = scope.get("headers") or []
        size = sum(len(k) + len(v) + 4 for k, v in headers)  # "k: v\r\n"
        if len(headers) > limits.max_headers or size > limits.max_header_bytes:
            refused = Problem(
                431,
                "headers-too-large",
                "Request headers too large",
                f"request: expected at most {limits.max_headers} header lines and {limits.max_header_bytes} "
                f"bytes of headers, got {len(headers)} lines and {size} bytes",
                headers=CLOSE,
            )
            await refused.response(scope.get("path"))(scope, receive, send)
            return
        declared = [v for k, v in headers if k == b"content-length"]
        if declared and (not declared[0].isdigit() or int(declared[0]) > limits.max_body_bytes):
            await too_large("request body", limits.max_body_bytes).response(scope.get("path"))(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        body_deadline = loop.time() + limits.body_timeout_s
        seen = 0
        body_done = False
        started = False

        async def guarded_receive():
            nonlocal seen, body_done
            if body_done:  # after the body only http.disconnect comes: nothing left to bound
                return await receive()
            try:
                async with asyncio.timeout_at(body_deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow(limits.body_timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limits.max_body_bytes:  # chunked, or more than declared: stop reading it
                    raise too_large("request body", limits.max_body_bytes)
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(limits.request_timeout_s):
                await self.app(scope, guarded_receive, tracking_send)
        except TimeoutError:
            log.warning("%s %s took over %.1f s: answered 503", scope["method"], scope["path"], limits.request_timeout_s)
            if started:
                raise  # the response began: the server can only close the connection
            late = Problem(
                503,
                "timeout",
                "Request took too long",
                f"request: expected an answer within {limits.request_timeout_s:g} s; retry later",
                headers={**CLOSE, "Retry-After": "1"},
            )
            await late.response(scope.get("path"))(scope, receive, send)
