"""The uvicorn HTTP/1.1 protocol of ``aigcrec serve``: h11 with a bounded header size and a header deadline.

uvicorn's own settings bound the header size (``h11_max_incomplete_event_size``: the request line and
headers together; past it h11 answers 400 and closes), idle keep-alive and the number of connections; they
do not bound how long a client may take to send its headers, nor how long it may trickle a body that the
app has already answered (uvicorn's keep-alive timer is cancelled by every byte that arrives). This
subclass closes a connection whose next request's headers are not complete ``header_timeout_s`` after the
connection opened or after its previous response. (httptools, uvicorn's default when installed, has no
header size limit at all, hence h11.) Body and whole-request deadlines are the app's (``guards.py``).
"""

from __future__ import annotations

import json
import logging
import os

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("aigcrec.service")

LIMITS_ENV = "AIGCREC_CONNECTION_LIMITS"
"""JSON ``{"header_timeout_s": ...}`` set by ``workers.run`` (it reaches spawned server processes)."""


def _header_timeout() -> float:
    return float(json.loads(os.environ.get(LIMITS_ENV) or "{}").get("header_timeout_s", 10.0))


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float | None = None  # read once per process from LIMITS_ENV

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = None
        self._arm()

    def _arm(self) -> None:
        if GuardedH11Protocol.header_timeout_s is None:
            GuardedH11Protocol.header_timeout_s = _header_timeout()
        self._disarm()
        self._armed_cycle = self.cycle  # a new request replaces the cycle: then the headers are in
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

    def _disarm(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.cycle is self._armed_cycle and not self.transport.is_closing():
            log.debug("closing a connection whose headers took over %.1f s", self.header_timeout_s)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self.cycle is not self._armed_cycle:
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # before super(): it may start a pipelined request, which then counts as started
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)
