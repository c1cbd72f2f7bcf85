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
import re
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


_STRUCTURE = re.compile(rb'["\\\[\]{},]')


class ArrayCounter:
    """Counts the elements of the array under a top-level ``key`` of a JSON object while its bytes stream
    in, and raises 413 at the first element past ``cap``: the feedback batch cap is enforced after at most
    one element too many has arrived, not after the whole body is parsed.

    An incremental scan of the structure only (depth, strings and their escapes, commas), never a parse:
    with ``d`` the nesting depth and the stack ``{ [``, each comma at depth 2 inside the array under
    ``key`` starts element ``n = commas + 1``. Byte-wise on UTF-8 (multi-byte characters never contain
    ASCII bytes), O(structural bytes) per chunk. A malformed body is left to the parser (422); a key
    spelt with escapes is not recognised and falls back to the cap checked after parsing.
    """

    def __init__(self, key: str, cap: int, what: str) -> None:
        self.key, self.cap, self.what = key.encode(), cap, what
        self.stack: list[int] = []  # opening bytes ({ or [) of the enclosing containers
        self.in_string = False
        self.escaped = False
        self.last_key = b""  # the last string closed at depth 1 (the key before a value)
        self._string: list[bytes] = []  # the current depth-1 string, at most len(key) + 1 bytes kept
        self.counting = False  # inside the array under ``key``
        self.elements = 0

    def feed(self, chunk: bytes) -> None:
        pos = 0  # start of the current depth-1 string's bytes not yet kept
        skip = 0 if self.escaped else -1  # index of the byte a backslash escapes
        self.escaped = False
        for m in _STRUCTURE.finditer(chunk):
            c = m.start()
            if c == skip:  # an escaped quote or backslash: part of the string
                continue
            ch = chunk[c]
            if self.in_string:
                if ch == 0x5C:  # backslash: the next byte is escaped
                    skip = c + 1
                elif ch == 0x22:  # closing quote
                    self.in_string = False
                    if len(self.stack) == 1:
                        self._keep(chunk[pos:c])
                        self.last_key = b"".join(self._string)
                continue
            if ch == 0x22:
                self.in_string, self._string, pos = True, [], c + 1
            elif ch == 0x7B or ch == 0x5B:  # { [
                self.stack.append(ch)
                depth = len(self.stack)
                if depth == 2 and ch == 0x5B and self.stack[0] == 0x7B and self.last_key == self.key:
                    self.counting, self.elements = True, 0
                elif depth == 3 and self.counting and self.elements == 0:
                    self._count()  # the first element
            elif ch == 0x7D or ch == 0x5D:  # } ]
                if len(self.stack) == 2:
                    self.counting = False
                if self.stack:
                    self.stack.pop()
            elif ch == 0x2C and self.counting and len(self.stack) == 2:  # a comma: one more element
                if self.elements == 0:
                    self._count()  # the first element was a scalar
                self._count()
        if self.in_string:
            if len(self.stack) == 1:
                self._keep(chunk[pos:])
            self.escaped = skip == len(chunk)  # the chunk ended on a backslash

    def _keep(self, part: bytes) -> None:
        if sum(map(len, self._string)) <= len(self.key):
            self._string.append(part[: len(self.key) + 1])

    def _count(self) -> None:
        self.elements += 1
        if self.elements > self.cap:
            raise Problem(
                413,
                "too-large",
                "Too many events",
                f"{self.what}: expected at most {self.cap}, got more (counted while the body streams in)",
                headers=CLOSE,
            )
