"""Prometheus text exposition (format 0.0.4) of request counts, latencies and serving-state gauges.

Kept dependency-free: a counter per (method, route, status) and a cumulative latency histogram per route,
recorded by a pure ASGI middleware (the route template, not the raw path, so ids do not explode labels).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from typing import Callable

BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_S) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}
        self.counters: dict[str, tuple[str, int]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(status))] += 1
            self.hist[route][bisect.bisect_left(BUCKETS_S, seconds)] += 1
            self.sums[route] += seconds

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def inc(self, name: str, help_text: str, by: int = 1) -> None:
        with self._lock:
            self.counters[name] = (help_text, self.counters.get(name, ("", 0))[1] + by)

    def render(self) -> str:
        out = [
            "# HELP aigcrec_http_requests_total HTTP requests by method, route and status.",
            "# TYPE aigcrec_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f'aigcrec_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}'
                )
            out += [
                "# HELP aigcrec_http_request_duration_seconds Request latency by route.",
                "# TYPE aigcrec_http_request_duration_seconds histogram",
            ]
            for route, counts in sorted(self.hist.items()):
                cum = 0
                for le, c in zip([*map(str, BUCKETS_S), "+Inf"], counts):
                    cum += c
                    out.append(
                        f'aigcrec_http_request_duration_seconds_bucket{{route="{route}",le="{le}"}} {cum}'
                    )
                out.append(
                    f'aigcrec_http_request_duration_seconds_sum{{route="{route}"}} {self.sums[route]:.6f}'
                )
                out.append(f'aigcrec_http_request_duration_seconds_count{{route="{route}"}} {cum}')
            for name, (help_text, value) in sorted(self.counters.items()):
                out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
        for name, (help_text, read) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {float(read())}"]
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and records it under its route template."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], path, status["code"], time.perf_counter() - t0)
