"""The FastAPI app: endpoints, API-key auth for writes, limits, problem+json errors, metrics, web demo.

``create_app(state)`` wraps a ready ``ServiceState``; ``aigcrec serve`` builds the state from the demo's
artifacts (or ``--catalog``/``--models``) and runs it under uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import sqlite3
import time
import uuid
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from aigcrec.service.api_models import (
    AffectOut,
    AffectRequest,
    Explanation,
    FeedbackAck,
    FeedbackBatch,
    FeedbackIn,
    Health,
    ItemIn,
    ItemOut,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    Rejected,
    Signals,
)
from aigcrec.service.media import check_image, check_text, check_wav, decode_base64, sniff_image
from aigcrec.service.metrics import BodyLimitMiddleware, MetricsMiddleware
from aigcrec.service.problems import Problem, install_problem_handlers
from aigcrec.service.state import ServiceState

log = logging.getLogger("aigcrec.service")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PROBLEM = {"model": dict, "content": {"application/problem+json": {}}}


def _labelled(probs: Any, labels: Any = None) -> dict[str, float]:
    """Probabilities as {label: p} from a mapping, or from a vector plus its labels."""
    if hasattr(probs, "items"):
        return {str(k): float(v) for k, v in probs.items()}
    values = np.asarray(probs, dtype=float).reshape(-1)
    names = list(labels) if labels is not None else [str(i) for i in range(len(values))]
    return {str(n): float(v) for n, v in zip(names, values)}


def affect_out(state: Any) -> AffectOut:
    return AffectOut(
        emotion=str(state.emotion),
        emotion_probs=_labelled(state.emotion_probs),
        intent=str(state.intent),
        intent_probs=_labelled(state.intent_probs),
        confidence=float(state.confidence),
        modalities_used=[str(m) for m in state.modalities_used],
        fusion_weights=_labelled(state.fusion_weights, state.modalities_used),
    )


def _item_out(meta: dict[str, Any]) -> ItemOut:
    return ItemOut(
        item_id=meta["item_id"],
        title=meta.get("title") or "",
        tags=meta.get("tags") or [],
        creator_id=meta.get("creator_id"),
        style=meta.get("style"),
        created_at=float(meta.get("created_at") or 0.0),
        origin=meta.get("origin", "catalog"),
        image_url=f"/v1/items/{meta['item_id']}/image",
    )


def create_app(state: ServiceState) -> FastAPI:
    """The HTTP app around a ready ``ServiceState``."""
    cfg = state.config
    limits = cfg.limits
    pipe = state.pipeline

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.api_key:
            log.info("writes need the API key (Authorization: Bearer ...)")
        elif cfg.demo_mode:
            log.warning("demo mode: no API key set; writes are accepted from loopback clients only")
        else:
            log.warning("no API key set (AIGCREC_API_KEY or service.api_key): write endpoints are refused")
        follower = asyncio.create_task(follow_store())
        state.ready = True
        yield
        state.ready = False  # /readyz turns 503 while uvicorn drains in-flight requests
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        state.store.close()

    async def sync() -> None:
        """Apply what was written to the store (by this process or another) since the last sync."""
        state.apply(await run_in_threadpool(state.changes))

    async def follow_store() -> None:
        while True:
            await asyncio.sleep(cfg.sync_interval_s)
            try:
                await sync()
            except Exception:  # a transient SQLite error must not stop the follower
                log.exception("following the store failed; retrying in %.2f s", cfg.sync_interval_s)

    app = FastAPI(
        title="aigcrec",
        version="0.1.0",
        lifespan=lifespan,
        description="Recommendations of AI-generated content from what it is, what users like, "
        "and how they feel now (UMAIR-FPS ranking with MMEI affect context).",
    )
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.state.service = state

    def require_writer(request: Request) -> None:
        """Bearer API key for writes; without a configured key, only loopback clients in demo mode."""
        if state.api_key:
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), state.api_key.encode()):
                raise Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "write endpoints need 'Authorization: Bearer <AIGCREC_API_KEY>'",
                )
            return
        host = request.client.host if request.client else ""
        if not (cfg.demo_mode and host in LOOPBACK_HOSTS):
            raise Problem(
                403,
                "writes-disabled",
                "Writes disabled",
                "no API key is configured (AIGCREC_API_KEY or service.api_key); writes are refused",
            )

    async def decode_signals(signals: Optional[Signals]) -> dict[str, Any]:
        if signals is None:
            return {}
        out: dict[str, Any] = {}
        if signals.text is not None and signals.text.strip():
            out["text"] = check_text(signals.text, limits, "signals.text")
        if signals.voice is not None:
            voice = decode_base64(signals.voice, limits.max_audio_bytes, "signals.voice")
            check_wav(voice, limits, "signals.voice")
            out["voice"] = voice
        if signals.face is not None:
            face = decode_base64(signals.face, limits.max_image_bytes, "signals.face")
            check_image(face, limits, "signals.face")
            out["face"] = face
        return out

    async def read_affect(signals: Optional[Signals]):
        decoded = await decode_signals(signals)
        if not decoded:
            return None
        if pipe.affect_model is None:
            raise Problem(
                422,
                "no-affect-model",
                "Affect model not loaded",
                "this server was started without an affect model (aigcrec serve --affect DIR); send no signals",
            )
        try:
            return await run_in_threadpool(pipe.read_affect, **decoded)
        except (ValueError, OSError) as exc:  # the model could not read the (sniffed, bounded) input
            raise Problem(422, "unreadable-signal", "Signal could not be read", str(exc)[:300]) from None

    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        tags=["recommend"],
        responses={413: _PROBLEM, 415: _PROBLEM, 422: _PROBLEM},
    )
    async def recommend(req: RecommendRequest) -> Response:
        """Affect (when signals are given) -> FAISS candidates -> UMAIR-FPS ranking -> diversity re-rank."""
        k = req.k or cfg.default_k
        if k > limits.max_k:
            raise Problem(
                422, "invalid-request", "k too large", f"k: expected at most {limits.max_k}, got {k}"
            )
        t0 = time.perf_counter()
        affect = await read_affect(req.signals)
        t1 = time.perf_counter()
        rec = pipe.recommend(req.user_id, k, affect, req.exclude_seen)
        items = []
        sources: dict[str, int] = {}
        for r in rec.items:
            meta = pipe.catalog.meta[pipe.catalog.row_of[r.item_id]]
            sources[r.source] = sources.get(r.source, 0) + 1
            items.append(
                RecommendedItem(
                    item_id=r.item_id,
                    score=r.score,
                    source=r.source,
                    modality_weights=r.modality_weights,
                    title=meta.get("title") or "",
                    creator_id=meta.get("creator_id"),
                    style=meta.get("style"),
                    image_url=f"/v1/items/{r.item_id}/image",
                )
            )
        mean_w = (
            {n: float(np.mean([r.modality_weights[n] for r in rec.items])) for n in rec.modality_names}
            if rec.items
            else {}
        )
        expl = Explanation(
            affect=None if affect is None else affect_out(affect),
            modality_names=rec.modality_names,
            modality_weights=mean_w,
            cold_start=rec.cold_start,
            sources=sources,
        )
        body = RecommendResponse(
            user_id=req.user_id,
            items=items,
            explanation=expl,
            timings_ms={"affect": (t1 - t0) * 1e3, **rec.timings_ms},
        )
        # Serialised by pydantic's core directly: FastAPI would validate and encode the model again.
        return Response(body.model_dump_json(), media_type="application/json")

    @app.post(
        "/v1/affect",
        response_model=AffectOut,
        tags=["recommend"],
        responses={413: _PROBLEM, 415: _PROBLEM, 422: _PROBLEM},
    )
    async def affect(req: AffectRequest) -> AffectOut:
        """The emotion and intent read from the signals, without recommendations."""
        state_ = await read_affect(req.signals)
        if state_ is None:
            raise Problem(
                422, "invalid-request", "No signal", "signals: expected at least one of text, voice, face"
            )
        return affect_out(state_)

    @app.post(
        "/v1/items",
        response_model=ItemOut,
        status_code=201,
        tags=["catalog"],
        dependencies=[Depends(require_writer)],
        responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 413: _PROBLEM, 415: _PROBLEM},
    )
    async def add_item(req: ItemIn) -> ItemOut:
        """Encode a new illustration and make it retrievable at once (no restart)."""
        image = decode_base64(req.image, limits.max_image_bytes, "image")
        check_image(image, limits, "image")
        item_id = req.item_id or f"api-{uuid.uuid4().hex[:16]}"
        if item_id in pipe.catalog.row_of:
            raise Problem(409, "conflict", "Item exists", f"item_id: {item_id!r} is already in the catalog")
        if pipe.encoder is None:
            raise Problem(503, "no-encoder", "Item encoder not loaded", "this server cannot encode new items")
        tags = [t.model_dump() for t in req.tags]
        try:
            vectors = await run_in_threadpool(pipe.encoder.encode_item, image, req.title, tags)
        except Exception as exc:  # the input passed sniffing and limits; the encoder still could not read it
            log.warning("encoding item %s failed: %s: %s", item_id, type(exc).__name__, exc)
            raise Problem(422, "bad-image", "Image could not be encoded", str(exc)[:300]) from None
        meta = {
            "item_id": item_id,
            "title": req.title,
            "tags": tags,
            "creator_id": req.creator_id,
            "style": req.style,
            "image_path": None,
            "created_at": time.time(),
            "origin": "api",
        }
        try:
            await run_in_threadpool(state.store.add_item, meta, image, vectors)
        except sqlite3.IntegrityError:
            raise Problem(
                409, "conflict", "Item exists", f"item_id: {item_id!r} is already in the catalog"
            ) from None
        await sync()  # retrievable here now; other server processes follow within sync_interval_s
        state.metrics.inc("aigcrec_items_added_total", "Items added through POST /v1/items.")
        return _item_out(meta)

    @app.get("/v1/items/{item_id}", response_model=ItemOut, tags=["catalog"], responses={404: _PROBLEM})
    async def get_item(item_id: str) -> ItemOut:
        if item_id not in pipe.catalog.row_of:
            await sync()  # maybe just added through another server process
        row = pipe.catalog.row_of.get(item_id)
        if row is None:
            raise Problem(404, "not-found", "Not found", f"item_id: no item {item_id!r}")
        return _item_out(pipe.catalog.meta[row])

    @app.get(
        "/v1/items/{item_id}/image", tags=["catalog"], responses={404: _PROBLEM}, response_class=Response
    )
    async def get_item_image(item_id: str) -> Response:
        row = pipe.catalog.row_of.get(item_id)
        if row is None:
            raise Problem(404, "not-found", "Not found", f"item_id: no item {item_id!r}")
        path = pipe.catalog.meta[row].get("image_path")
        if path and Path(path).is_file():
            return FileResponse(path, headers={"Cache-Control": "max-age=3600"})
        data = await run_in_threadpool(state.store.item_image, item_id)
        if data is None:
            raise Problem(404, "not-found", "No image", f"item {item_id!r} has no stored image")
        return Response(
            data,
            media_type=sniff_image(data) or "application/octet-stream",
            headers={"Cache-Control": "max-age=3600"},
        )

    @app.post(
        "/v1/feedback",
        response_model=FeedbackAck,
        tags=["feedback"],
        dependencies=[Depends(require_writer)],
        responses={401: _PROBLEM, 403: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM},
    )
    async def feedback(req: FeedbackIn) -> FeedbackAck:
        """Append events durably (acknowledged after the commit); unknown items are reported and skipped."""
        events = req.events if isinstance(req, FeedbackBatch) else [req]
        if len(events) > limits.max_feedback_batch:
            raise Problem(
                413,
                "too-large",
                "Batch too large",
                f"events: expected at most {limits.max_feedback_batch}, got {len(events)}",
            )
        if any(e.item_id not in pipe.catalog.row_of for e in events):
            await sync()  # items added through another server process may not be here yet
        rows, rejected = [], []
        for i, e in enumerate(events):
            if e.item_id not in pipe.catalog.row_of:
                rejected.append(Rejected(index=i, reason=f"unknown item_id {e.item_id!r}"))
                continue
            rows.append(
                {
                    "user_id": e.user_id,
                    "item_id": e.item_id,
                    "type": e.type,
                    "value": e.value,
                    "ts": e.timestamp,
                    "session_id": e.session_id,
                }
            )
        if not rows:
            raise Problem(
                422,
                "invalid-request",
                "No valid event",
                "; ".join(r.reason for r in rejected[:5]),
                rejected=[r.model_dump() for r in rejected],
            )
        first, last = await run_in_threadpool(state.store.append_events, rows)
        await sync()  # the next recommendation from this process sees the events
        state.metrics.inc("aigcrec_feedback_events_total", "Feedback events appended to the log.", len(rows))
        return FeedbackAck(accepted=len(rows), first_seq=first, last_seq=last, rejected=rejected)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["ops"], responses={503: _PROBLEM})
    async def readyz() -> Health:
        if not state.ready:
            raise Problem(503, "not-ready", "Not ready", "the server is starting or shutting down")
        return Health(status="ready", items=len(pipe.catalog), index=pipe.index.kind, process=os.getpid())

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

    static = files("aigcrec.service").joinpath("static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text(encoding="utf-8"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
