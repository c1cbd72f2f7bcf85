"""What the HTTP routes may ask of a server process: ``item``, ``recommend``, ``affect``, ``ingest``,
``feedback`` and the ops reads, over a ``ServiceState``.

Routes see API models and this facade only, never the catalog's rows or the pipeline (``routes/``). The
facade also decides where work runs so that no kind of request waits behind another: the event loop only
parses and answers; affect readings run in their own bounded pool with a wall-time budget;
recommendations in a small pool of their own (more threads than cores would only contend for the GIL
with the event loop); item encoding in one encoder thread at a lower CPU priority with a bounded queue,
outside every lock a feedback write takes; SQLite writes in the default pool behind the store's one lock
(held for the transaction only, never for encoding).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

import numpy as np
from fastapi.concurrency import run_in_threadpool

from aigcrec.service.api_models import (
    AffectOut,
    Explanation,
    FeedbackAck,
    FeedbackEvent,
    Health,
    ItemCreated,
    ItemIn,
    ItemOut,
    RecommendedItem,
    RecommendResponse,
    Rejected,
    Signals,
    StatedAffect,
)
from aigcrec.service.media import check_image, check_text, check_wav, decode_base64, prepare_face, prepare_item
from aigcrec.service.problems import Problem
from aigcrec.service.stated import stated_state
from aigcrec.service.state import ServiceState
from aigcrec.service.store import Idempotency, IdempotencyMismatch, Served, StoredAnswer

log = logging.getLogger("aigcrec.service")

ENCODER_NICENESS = 10
"""How much lower the item encoder thread's CPU priority is than the server's."""


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


def item_out(meta: dict[str, Any]) -> ItemOut:
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


def busy(what: str, limit: int) -> Problem:
    return Problem(
        503,
        "busy",
        "Server busy",
        f"{what}: {limit} already running or queued; retry later",
        headers={"Retry-After": "1"},
    )


def _lower_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority (Linux threads have their own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + niceness)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the process's priority
        pass


class _BoundedPool:
    """A thread pool that refuses work (503) instead of queueing more than ``pending`` items; its threads
    run ``niceness`` below the process's priority (background work yields the CPU to requests)."""

    def __init__(self, threads: int, pending: int, name: str, niceness: int = 0) -> None:
        init = (lambda: _lower_priority(niceness)) if niceness else None
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=init)
        self.pending, self.name, self.inflight = pending, name, 0

    async def run(self, fn, *args, timeout: float | None = None, **kwargs):
        if self.inflight >= self.pending:
            raise busy(self.name, self.pending)
        self.inflight += 1  # only touched from the event loop
        try:
            future = asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kwargs))
            return await asyncio.wait_for(future, timeout)
        finally:
            self.inflight -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ServiceFacade:
    """The service as the HTTP layer sees it (one per server process, around its ``ServiceState``)."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.config = state.config
        self.limits = state.config.limits
        self._pipe = state.pipeline
        limits = self.limits
        self._affect = _BoundedPool(limits.affect_threads, limits.max_pending_affect, "affect")
        self._ranking = _BoundedPool(limits.recommend_threads, limits.max_connections, "recommend")
        # Encoding an item is the heaviest work a request can ask for: one thread, at a lower CPU priority,
        # so that feedback and recommendations keep their latency while items are posted.
        self._encoder = _BoundedPool(1, limits.max_pending_items, "encode", niceness=ENCODER_NICENESS)

    # -- lifecycle --------------------------------------------------------------------------------------
    @property
    def api_key(self) -> Optional[str]:
        return self.state.api_key

    @property
    def ready(self) -> bool:
        return self.state.ready

    def close(self) -> None:
        for pool in (self._affect, self._ranking, self._encoder):
            pool.close()
        self.state.store.close()

    async def sync(self) -> None:
        """Apply what was written to the store (by this process or another) since the last sync."""
        self.state.apply(await run_in_threadpool(self.state.changes))

    # -- reads ------------------------------------------------------------------------------------------
    async def item(self, item_id: str) -> Optional[ItemOut]:
        """The item's metadata, or None; an id this process does not know yet triggers a sync first
        (it may just have been added through another server process)."""
        if item_id not in self._pipe.catalog.row_of:
            await self.sync()
        row = self._pipe.catalog.row_of.get(item_id)
        return None if row is None else item_out(self._pipe.catalog.meta[row])

    async def item_image(self, item_id: str) -> tuple[Optional[str], Optional[bytes]]:
        """(file path, None) for catalog images on disk, (None, bytes) for stored ones; Problem 404."""
        row = self._pipe.catalog.row_of.get(item_id)
        if row is None:
            raise Problem(404, "not-found", "Not found", f"item_id: no item {item_id!r}")
        path = self._pipe.catalog.meta[row].get("image_path")
        if path and os.path.isfile(path):
            return str(path), None
        data = await run_in_threadpool(self.state.store.item_image, item_id)
        if data is None:
            raise Problem(404, "not-found", "No image", f"item {item_id!r} has no stored image")
        return None, data

    def health(self) -> Health:
        pipe = self._pipe
        return Health(status="ready", items=len(pipe.catalog), index=pipe.index.kind, process=os.getpid())

    def metrics_text(self) -> str:
        return self.state.metrics.render()

    # -- affect and recommendations ---------------------------------------------------------------------
    def _decode_signals(self, signals: Optional[Signals]) -> dict[str, Any]:
        """Signals checked against the limits from their headers, faces downscaled (CPU-bound: a thread)."""
        if signals is None:
            return {}
        limits = self.limits
        out: dict[str, Any] = {}
        if signals.text is not None and signals.text.strip():
            out["text"] = check_text(signals.text, limits, "signals.text")
        if signals.voice is not None:
            voice = decode_base64(signals.voice, limits.max_audio_bytes, "signals.voice")
            check_wav(voice, limits, "signals.voice")
            out["voice"] = voice
        if signals.face is not None:
            face = decode_base64(signals.face, limits.max_image_bytes, "signals.face")
            out["face"] = prepare_face(face, limits, "signals.face")
        return out

    def _read_affect_sync(self, signals: Optional[Signals]):
        decoded = self._decode_signals(signals)
        if not decoded:
            return None
        if self._pipe.affect_model is None:
            raise Problem(
                422, "no-affect-model", "Affect model not loaded",
                "this server was started without an affect model (aigcrec serve --affect DIR); send no signals"
            )
        try:
            return self._pipe.read_affect(**decoded)
        except (ValueError, OSError) as exc:  # the model could not read the (sniffed, bounded) input
            raise Problem(422, "unreadable-signal", "Signal could not be read", str(exc)[:300]) from None

    async def read_affect(self, signals: Optional[Signals]):
        """The affect state of the signals (None without any), within ``limits.affect_timeout_s``."""
        if signals is None or all(v is None for v in (signals.text, signals.voice, signals.face)):
            return None
        try:
            return await self._affect.run(
                self._read_affect_sync, signals, timeout=self.limits.affect_timeout_s
            )
        except asyncio.TimeoutError:
            raise Problem(
                503,
                "timeout",
                "Affect reading took too long",
                f"signals: expected a reading within {self.limits.affect_timeout_s:g} s; retry later",
                headers={"Retry-After": "1"},
            ) from None

    async def affect(self, signals: Signals) -> AffectOut:
        state = await self.read_affect(signals)
        if state is None:
            raise Problem(
                422, "invalid-request", "No signal", "signals: expected at least one of text, voice, face"
            )
        return affect_out(state)

    def _stated_base(self, stated: StatedAffect, affect: Any) -> Any:
        """What a stated state is merged into: the reading of the signals, else the model's prior; the
        stated labels checked against the model's (422 naming the field)."""
        model = self._pipe.affect_model
        if model is None:
            raise Problem(
                422, "no-affect-model", "Affect model not loaded",
                "stated: this server was started without an affect model (aigcrec serve --affect DIR); the "
                "ranker's affect context is the affect model's format",
            )
        base = affect
        if base is None:
            prior = getattr(model, "prior", None)
            if prior is None:
                raise Problem(
                    422, "no-affect-prior", "No affect prior",
                    "stated: this affect model has no prior state; send signals with the stated state",
                )
            base = prior()
        try:
            return stated_state(base, stated.emotion, stated.intent)
        except ValueError as exc:
            raise Problem(422, "invalid-request", "Unknown stated label", str(exc)[:500]) from None

    async def recommend(
        self, user_id: str, k: Optional[int], signals: Optional[Signals], exclude_seen: bool,
        context: Optional[dict[str, Any]] = None, stated: Optional[StatedAffect] = None,
    ) -> RecommendResponse:
        """Affect (when signals are given) -> FAISS candidates -> UMAIR-FPS ranking -> diversity re-rank;
        ``context``: explicit context values (checked against the ranker's context schema before any work);
        ``stated``: an explicit affect state replacing what is read from the signals (``service/stated.py``).
        """
        k = k or self.config.default_k
        if k > self.limits.max_k:
            raise Problem(
                422, "invalid-request", "k too large", f"k: expected at most {self.limits.max_k}, got {k}"
            )
        try:
            self._pipe.check_context(context)
        except ValueError as exc:
            raise Problem(422, "unknown-context", "Unknown context", str(exc)[:500]) from None
        if stated is not None and getattr(self._pipe.affect_model, "prior", None) is not None:
            self._stated_base(stated, None)  # the labels are checked before the signals are read
        t0 = time.perf_counter()
        affect = await self.read_affect(signals)
        if stated is not None:
            affect = self._stated_base(stated, affect)
        t1 = time.perf_counter()
        query = signals.text if signals is not None else None  # a retrieval query too (never stored)
        return await self._ranking.run(self._recommend_sync, user_id, k, affect, exclude_seen, (t1 - t0) * 1e3,
                                       context, query)

    def _recommend_sync(
        self, user_id: str, k: int, affect: Any, exclude_seen: bool, affect_ms: float,
        context: Optional[dict[str, Any]] = None, query: Optional[str] = None,
    ) -> RecommendResponse:
        pipe = self._pipe
        rec = pipe.recommend(user_id, k, affect, exclude_seen, context, query=query)
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
        reading = None if affect is None else affect_out(affect)
        expl = Explanation(
            affect=reading,
            modality_names=rec.modality_names,
            modality_weights=mean_w,
            cold_start=rec.cold_start,
            sources=sources,
        )
        request_id = uuid.uuid4().hex
        t0 = time.perf_counter()
        self._log_served(Served(
            request_id, user_id, time.time(), [(r.item_id, r.score, r.source) for r in rec.items], rec.cold_start,
            None if reading is None else reading.model_dump(), context))
        return RecommendResponse(
            request_id=request_id,
            user_id=user_id,
            items=items,
            explanation=expl,
            timings_ms={"affect": affect_ms, **rec.timings_ms, "log": (time.perf_counter() - t0) * 1e3},
        )

    def _log_served(self, served: Served) -> None:
        """Log the list and its derived context (``ServiceStore.log_served``) before it is answered, so feedback
        naming its request_id finds it in any server process. A log that cannot be written (the file busy past
        its timeout, the disk full) is counted and reported; the recommendation is still answered, and feedback
        naming that request_id is then refused as unknown."""
        try:
            self.state.store.log_served(served)
        except sqlite3.OperationalError as exc:
            log.error("request %s: the served list could not be logged: %s", served.request_id, exc)
            self.state.metrics.inc("aigcrec_served_log_failures_total", "Recommendations whose list was not logged.")

    # -- writes -----------------------------------------------------------------------------------------
    def _replay(self, idempotency: Optional[Idempotency]) -> Optional[StoredAnswer]:
        if idempotency is None:
            return None
        try:
            return self.state.store.replay(idempotency, self.limits.idempotency_ttl_s)
        except IdempotencyMismatch as exc:
            raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused", str(exc)) from None

    async def _idempotent(self, idempotency: Optional[Idempotency], write) -> Optional[StoredAnswer]:
        try:
            return await run_in_threadpool(write)
        except IdempotencyMismatch as exc:
            raise Problem(422, "idempotency-key-reused", "Idempotency-Key reused", str(exc)) from None

    def _encode_item(self, encoder, image: bytes, title: str, tags: list) -> dict:
        """Decode within the budget, downscale to ``item_side`` and encode (in the encoder's thread)."""
        return encoder.encode_item(prepare_item(image, self.limits, "image"), title, tags)

    async def ingest(self, req: ItemIn, idempotency: Optional[Idempotency] = None) -> tuple[int, str, bool]:
        """Encode a new item and make it retrievable at once; returns (status, JSON body, replayed).

        A key seen before answers what it answered then, without encoding again.
        """
        stored = await run_in_threadpool(self._replay, idempotency)
        if stored is not None:
            return stored.status, stored.body, True
        image = decode_base64(req.image, self.limits.max_image_bytes, "image")
        check_image(image, self.limits, "image")
        item_id = req.item_id or f"api-{uuid.uuid4().hex[:16]}"
        pipe = self._pipe
        if item_id in pipe.catalog.row_of:
            raise Problem(409, "conflict", "Item exists", f"item_id: {item_id!r} is already in the catalog")
        if pipe.encoder is None:
            raise Problem(503, "no-encoder", "Item encoder not loaded", "this server cannot encode new items")
        tags = [t.model_dump() for t in req.tags]
        try:  # in the encoder's own thread: feedback and recommendations do not queue behind it
            vectors = await self._encoder.run(self._encode_item, pipe.encoder, image, req.title, tags)
        except Problem:
            raise
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
        body = ItemCreated(**item_out(meta).model_dump()).model_dump_json()
        try:
            stored = await self._idempotent(
                idempotency,
                lambda: self.state.store.add_item(meta, image, vectors, idempotency, lambda: (201, body)),
            )
        except sqlite3.IntegrityError:
            raise Problem(
                409, "conflict", "Item exists", f"item_id: {item_id!r} is already in the catalog"
            ) from None
        if stored is not None and stored.replayed:  # a concurrent retry with the same key won the race
            return stored.status, stored.body, True
        await self.sync()  # retrievable here now; other server processes follow within sync_interval_s
        self.state.metrics.inc("aigcrec_items_added_total", "Items added through POST /v1/items.")
        return 201, body, False

    async def feedback(
        self, events: Sequence[FeedbackEvent], idempotency: Optional[Idempotency] = None
    ) -> tuple[int, str, bool]:
        """Append events durably (acknowledged after the commit); unknown items are reported and skipped.

        Returns (status, JSON body of a ``FeedbackAck``, replayed). With an idempotency key the ack is
        stored in the events' transaction: a retry after a lost acknowledgement gets it back, and the
        events are stored once.
        """
        if len(events) > self.limits.max_feedback_batch:
            raise Problem(
                413,
                "too-large",
                "Batch too large",
                f"events: expected at most {self.limits.max_feedback_batch}, got {len(events)}",
            )
        # No look-up of the key first (unlike ingest, nothing costly comes before the write): the write's
        # transaction finds an earlier answer itself and then writes nothing.
        row_of = self._pipe.catalog.row_of
        if any(e.item_id not in row_of for e in events):
            await self.sync()  # items added through another server process may not be here yet
        named = {e.request_id for e in events if e.request_id is not None}
        served = await run_in_threadpool(self.state.store.served_lists, named) if named else {}
        rows, rejected = [], []
        for i, e in enumerate(events):
            if e.item_id not in row_of:
                rejected.append(Rejected(index=i, reason=f"unknown item_id {e.item_id!r}"))
                continue
            problem = _served_problem(e, served)
            if problem is not None:
                rejected.append(Rejected(index=i, reason=problem))
                continue
            rows.append(
                {
                    "user_id": e.user_id,
                    "item_id": e.item_id,
                    "type": e.type,
                    "value": e.value,
                    "ts": e.timestamp,
                    "session_id": e.session_id,
                    "request_id": e.request_id,
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

        def answer(first: int, last: int) -> tuple[int, str]:
            ack = FeedbackAck(accepted=len(rows), first_seq=first, last_seq=last, rejected=rejected)
            return 200, ack.model_dump_json()

        result = await self._idempotent(
            idempotency, lambda: self.state.store.append_events(rows, idempotency, answer)
        )
        if isinstance(result, StoredAnswer):
            if result.replayed:
                return result.status, result.body, True
            status, body = result.status, result.body
        else:
            status, body = answer(*result)
        await self.sync()  # the next recommendation from this process sees the events
        self.state.metrics.inc("aigcrec_feedback_events_total", "Feedback events appended to the log.", len(rows))
        return status, body, False


def _served_problem(event: FeedbackEvent, served: dict[str, tuple[str, set[str]]]) -> Optional[str]:
    """Why an event naming a ``request_id`` does not answer that logged list (None when it does, or names none)."""
    if event.request_id is None:
        return None
    found = served.get(event.request_id)
    if found is None:
        return f"unknown request_id {event.request_id!r} (no recommendation with this id was logged)"
    user, items = found
    if user != event.user_id:
        return f"request_id {event.request_id!r} was served to another user, not {event.user_id!r}"
    if event.item_id not in items:
        return f"item_id {event.item_id!r} was not in the list of request_id {event.request_id!r}"
    return None


def replay_body(body: str) -> str:
    """A stored JSON answer with ``replayed: true`` set (the stored copy says false)."""
    doc = json.loads(body)
    doc["replayed"] = True
    return json.dumps(doc)
