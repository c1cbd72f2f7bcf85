"""Durable state of the service: one SQLite file in WAL mode holding the catalog, users and the event log.

The event log is append-only; a feedback batch is acknowledged only after its transaction commits (with
``synchronous=FULL`` the WAL is fsynced first), so an acknowledged event survives ``kill -9``.
Every recommendation served is logged too (``log_served``: tables ``served`` and ``served_items``): the list
(items, positions, scores, sources) and the derived context it was served in (emotion and intent
probabilities, confidence, the signals used, the explicit context values), never a raw face, voice clip or
utterance text. Feedback may name the ``request_id`` of the list it answers (``events.request_id``);
``served_interactions`` rebuilds the impressions with the context they were served in.
Content vectors of catalog items stay in the feature store; items added through the API keep theirs
(and their image) here so a restart serves them again.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from aigcrec.data.affect_context import AffectContextSchema

EVENT_TYPES: tuple[str, ...] = ("impression", "click", "bookmark", "skip", "dwell")
POSITIVE_EVENTS: frozenset[str] = frozenset({"click", "bookmark"})
"""Events that say the user wants more like this item (they form the retrieval query)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY, title TEXT NOT NULL, tags TEXT NOT NULL, creator_id TEXT, style TEXT,
    image_path TEXT, created_at REAL NOT NULL, origin TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item_blobs (item_id TEXT PRIMARY KEY REFERENCES items(item_id),
    image BLOB NOT NULL, vectors BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, first_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT NOT NULL,
    type TEXT NOT NULL, value REAL, ts REAL NOT NULL, session_id TEXT, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, seq);
CREATE TABLE IF NOT EXISTS served (
    request_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, ts REAL NOT NULL, events_seq INTEGER NOT NULL,
    cold_start INTEGER NOT NULL, emotion TEXT, intent TEXT, confidence REAL, emotion_probs TEXT,
    intent_probs TEXT, modalities_used TEXT, fusion_weights TEXT, context TEXT);
CREATE INDEX IF NOT EXISTS served_user ON served(user_id, ts);
CREATE TABLE IF NOT EXISTS served_items (
    request_id TEXT NOT NULL REFERENCES served(request_id), position INTEGER NOT NULL, item_id TEXT NOT NULL,
    score REAL NOT NULL, source TEXT NOT NULL, PRIMARY KEY (request_id, position));
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT NOT NULL, route TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
    answer TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (route, key));
"""

BUSY_WAIT_MS = 5000
"""How long a write waits for another connection's write transaction."""
IMPORT_WAIT_MS = 600_000
"""How long a starting server process waits for another one's first-start catalog import."""

EVENT_COLUMNS: tuple[str, ...] = (
    "seq", "user_id", "item_id", "type", "value", "ts", "session_id", "origin", "request_id")
SERVED_COLUMNS: tuple[str, ...] = (
    "request_id", "user_id", "ts", "events_seq", "cold_start", "emotion", "intent", "confidence", "emotion_probs",
    "intent_probs", "modalities_used", "fusion_weights", "context")
"""Columns of ``served`` (the ``*_probs``, ``modalities_used``, ``fusion_weights`` and ``context`` ones are JSON)."""
ITEM_COLUMNS: tuple[str, ...] = (
    "item_id",
    "title",
    "tags",
    "creator_id",
    "style",
    "image_path",
    "created_at",
    "origin",
)


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` of one write: the key, the route it was sent to and a digest of the request."""

    key: str
    route: str
    fingerprint: str


@dataclass(frozen=True)
class StoredAnswer:
    """The answer stored with an idempotency key: status and JSON body, and whether it is a replay."""

    status: int
    body: str
    replayed: bool


@dataclass(frozen=True)
class Served:
    """One recommendation response as logged: who, when, the list in display order and its derived context.

    ``items``: (item_id, score, source) per position; ``affect``: the affect reading's derived values
    (``emotion``, ``intent``, ``emotion_probs``, ``intent_probs``, ``confidence``, ``modalities_used``,
    ``fusion_weights``) or None without signals; ``context``: the explicit context values of the request.
    """

    request_id: str
    user_id: str
    ts: float
    items: Sequence[tuple[str, float, str]]
    cold_start: bool
    affect: Optional[Mapping[str, Any]] = None
    context: Optional[Mapping[str, Any]] = None


class IdempotencyMismatch(ValueError):
    """The key was used before with a different request (the client reused it by mistake)."""


def _pack_vectors(vectors: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()})
    return buf.getvalue()


def _unpack_vectors(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


class ServiceStore:
    """The SQLite file (created on first open). Thread-safe: one connection behind a lock."""

    def __init__(self, path: str | Path, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._synchronous = synchronous
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_WAIT_MS}")
        self._db.executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a file made by an earlier version up to this schema (``events.request_id``), once, atomically."""
        if "request_id" in {r[1] for r in self._db.execute("PRAGMA table_info(events)")}:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if "request_id" not in {r[1] for r in self._db.execute("PRAGMA table_info(events)")}:
                self._db.execute("ALTER TABLE events ADD COLUMN request_id TEXT")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- meta ---------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(key, value)])

    # -- catalog ------------------------------------------------------------------------------------
    def import_catalog(self, items: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> bool:
        """Load a catalog and its past interactions once, in one transaction (first start only).

        Safe when several server processes start on one file at once: the check and the import share a
        write transaction, so exactly one of them imports. Returns whether this call imported.
        """
        if self.get_meta("catalog_imported") is not None:
            return False
        with self._lock:
            # Another process may be importing a large catalog right now: wait for it, not 5 s.
            self._db.execute(f"PRAGMA busy_timeout={IMPORT_WAIT_MS}")
            try:
                self._db.execute("BEGIN IMMEDIATE")
            finally:
                self._db.execute(f"PRAGMA busy_timeout={BUSY_WAIT_MS}")
            try:
                if self._db.execute("SELECT 1 FROM meta WHERE key = 'catalog_imported'").fetchone():
                    self._db.execute("ROLLBACK")
                    return False
                self._db.executemany(
                    f"INSERT OR IGNORE INTO items({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * 8)})",
                    ([_item_row(it)[c] for c in ITEM_COLUMNS] for it in items),
                )
                self._db.executemany(
                    "INSERT INTO events(user_id, item_id, type, value, ts, session_id, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'catalog')",
                    (
                        (e["user_id"], e["item_id"], e["type"], e.get("value"), e["ts"], e.get("session_id"))
                        for e in events
                    ),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('catalog_imported', ?)",
                    (str(time.time()),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def add_item(
        self,
        item: Mapping[str, Any],
        image: bytes,
        vectors: Mapping[str, np.ndarray],
        idempotency: Optional[Idempotency] = None,
        answer: Callable[[], tuple[int, str]] | None = None,
    ) -> Optional[StoredAnswer]:
        """Persist an item posted through the API with its image and content vectors.

        With ``idempotency``, ``answer()`` (status, JSON body) is stored with the key in the same transaction,
        and a key seen before returns its stored answer instead of writing (see ``replay``).
        """
        row = _item_row({**item, "origin": "api"})

        def write(db: sqlite3.Connection) -> tuple[int, str]:
            db.execute(
                f"INSERT INTO items({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * 8)})",
                [row[c] for c in ITEM_COLUMNS],
            )
            db.execute(
                "INSERT INTO item_blobs(item_id, image, vectors) VALUES (?, ?, ?)",
                (row["item_id"], image, _pack_vectors(vectors)),
            )
            return answer() if answer is not None else (201, "")

        return self._idempotent_write(write, idempotency)

    def replay(self, idempotency: Idempotency, ttl_s: float = float("inf")) -> Optional[StoredAnswer]:
        """The stored answer of an earlier write with this key (younger than ``ttl_s``), or None.

        Raises ``IdempotencyMismatch`` when the key was stored for a different request.
        """
        rows = self._query(
            "SELECT fingerprint, status, answer FROM idempotency WHERE route = ? AND key = ? AND created > ?",
            (idempotency.route, idempotency.key, time.time() - ttl_s),
        )
        return self._stored(idempotency, rows[0]) if rows else None

    @staticmethod
    def _stored(idempotency: Idempotency, row: tuple) -> StoredAnswer:
        fingerprint, status, body = row
        if fingerprint != idempotency.fingerprint:
            raise IdempotencyMismatch(
                f"Idempotency-Key {idempotency.key!r} was used before with a different request"
            )
        return StoredAnswer(int(status), body, True)

    def _idempotent_write(
        self, write: Callable[[sqlite3.Connection], tuple[int, str]], idempotency: Optional[Idempotency]
    ) -> Optional[StoredAnswer]:
        """Run ``write`` in one write transaction; with a key, store its answer in the same transaction,
        or return the answer stored before (and write nothing). Without a key, returns None."""
        found = None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if idempotency is not None:
                    found = self._db.execute(
                        "SELECT fingerprint, status, answer FROM idempotency WHERE route = ? AND key = ?",
                        (idempotency.route, idempotency.key),
                    ).fetchone()
                if found is None:
                    status, body = write(self._db)
                    if idempotency is not None:
                        self._db.execute(
                            "INSERT INTO idempotency(key, route, fingerprint, status, answer, created) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (idempotency.key, idempotency.route, idempotency.fingerprint, status, body, time.time()),
                        )
                self._db.execute("COMMIT" if found is None else "ROLLBACK")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if found is not None:  # outside the transaction: a mismatch raises with nothing left open
            return self._stored(idempotency, found)
        return None if idempotency is None else StoredAnswer(status, body, False)

    def forget_idempotency_before(self, when: float) -> int:
        """Drop stored answers older than ``when`` (Unix seconds); returns how many."""
        return self._write("DELETE FROM idempotency WHERE created < ?", [(when,)]).rowcount

    def changes_since(
        self, item_after: int = 0, event_after: int = 0
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, np.ndarray]], list[dict[str, Any]]]:
        """Items with ``rowid > item_after`` (each dict carries its ``rowid``), the vectors of those added
        through the API (item_id -> name -> vector) and events with ``seq > event_after``, in log order.

        One read transaction: a consistent snapshot, so every returned event's item is among the returned
        items or older than ``item_after`` (server processes sharing the file tail it this way).
        """
        with self._lock:
            self._db.execute("BEGIN")
            try:
                items = self._items_after(item_after)
                api = [it["item_id"] for it in items if it["origin"] == "api"]
                vectors = {}
                for chunk in range(0, len(api), 500):  # SQLite caps the number of bound parameters
                    ids = api[chunk : chunk + 500]
                    vectors.update(
                        (i, _unpack_vectors(v))
                        for i, v in self._db.execute(
                            f"SELECT item_id, vectors FROM item_blobs WHERE item_id IN ({', '.join('?' * len(ids))})",
                            ids,
                        )
                    )
                events = self._events_after(event_after)
            finally:
                self._db.execute("COMMIT")
        return items, vectors, events

    def _items_after(self, rowid: int) -> list[dict[str, Any]]:
        rows = self._db.execute(
            f"SELECT rowid, {', '.join(ITEM_COLUMNS)} FROM items WHERE rowid > ? ORDER BY rowid", (rowid,)
        ).fetchall()
        return [{**dict(zip(ITEM_COLUMNS, r[1:])), "tags": json.loads(r[3]), "rowid": r[0]} for r in rows]

    def _events_after(self, seq: int, origin: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE seq > ?" + (" AND origin = ?" if origin else "")
        rows = self._db.execute(sql + " ORDER BY seq", (seq, origin) if origin else (seq,)).fetchall()
        return [dict(zip(EVENT_COLUMNS, r)) for r in rows]

    def item_image(self, item_id: str) -> bytes | None:
        rows = self._query("SELECT image FROM item_blobs WHERE item_id = ?", (item_id,))
        return rows[0][0] if rows else None

    # -- events -------------------------------------------------------------------------------------
    def append_events(
        self,
        events: Sequence[Mapping[str, Any]],
        idempotency: Optional[Idempotency] = None,
        answer: Callable[[int, int], tuple[int, str]] | None = None,
    ) -> tuple[int, int] | StoredAnswer:
        """Append a feedback batch durably; returns the first and last sequence numbers given.

        With ``idempotency``, ``answer(first, last)`` (status, JSON body) is stored with the key in the same
        transaction and returned as a ``StoredAnswer``; a key seen before returns its stored answer, with
        ``replayed`` set, and appends nothing: a batch retried after a lost acknowledgement is stored once.
        An event's ``ts`` is kept as given (0 included); without one, the arrival time.
        """
        if not events:
            raise ValueError("append_events: expected at least one event, got an empty batch")
        now = time.time()
        seqs: list[int] = []

        def write(db: sqlite3.Connection) -> tuple[int, str]:
            db.executemany(
                "INSERT OR IGNORE INTO users(user_id, first_seen) VALUES (?, ?)",
                ((u, now) for u in {e["user_id"] for e in events}),
            )
            for e in events:
                cur = db.execute(
                    "INSERT INTO events(user_id, item_id, type, value, ts, session_id, origin, request_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'api', ?)",
                    (
                        e["user_id"],
                        e["item_id"],
                        e["type"],
                        e.get("value"),
                        now if e.get("ts") is None else e["ts"],
                        e.get("session_id"),
                        e.get("request_id"),
                    ),
                )
                seqs.append(int(cur.lastrowid))
            return answer(seqs[0], seqs[-1]) if answer is not None else (200, "")

        stored = self._idempotent_write(write, idempotency)
        return (seqs[0], seqs[-1]) if stored is None else stored

    # -- served lists -------------------------------------------------------------------------------
    def log_served(self, served: Served) -> None:
        """Log one response in one write transaction: a ``served`` row and one ``served_items`` row per position.

        Bounded: k + 1 rows of ids, numbers and labels (no media, no text) and no fsync of its own
        (``synchronous=NORMAL`` for this commit: a power cut may lose the last lists served, never an
        acknowledged feedback event, whose commit fsyncs the WAL with everything before it).
        ``events_seq`` records the event log's last sequence number, so feedback that names no request can
        be matched to the lists served before it (``served_interactions``).
        """
        a = served.affect or {}
        dump = (lambda v: None if v is None else json.dumps(v, ensure_ascii=False))  # label order kept: the model's
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
                    self._db.execute(
                        f"INSERT INTO served({', '.join(SERVED_COLUMNS)}) VALUES ({', '.join('?' * len(SERVED_COLUMNS))})",
                        (served.request_id, served.user_id, float(served.ts), int(seq), int(served.cold_start),
                         a.get("emotion"), a.get("intent"), a.get("confidence"), dump(a.get("emotion_probs")),
                         dump(a.get("intent_probs")), dump(a.get("modalities_used")), dump(a.get("fusion_weights")),
                         dump(dict(served.context)) if served.context else None),
                    )
                    self._db.executemany(
                        "INSERT INTO served_items(request_id, position, item_id, score, source) VALUES (?, ?, ?, ?, ?)",
                        ((served.request_id, pos, str(i), float(sc), str(src))
                         for pos, (i, sc, src) in enumerate(served.items)),
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            finally:
                self._db.execute(f"PRAGMA synchronous={self._synchronous}")

    def served_lists(self, request_ids: Iterable[str]) -> dict[str, tuple[str, set[str]]]:
        """request_id -> (user_id, the item ids served) of the logged requests among ``request_ids``."""
        ids = sorted(set(request_ids))
        out: dict[str, tuple[str, set[str]]] = {}
        with self._lock:
            for chunk in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
                part = ids[chunk : chunk + 500]
                marks = ", ".join("?" * len(part))
                for rid, user in self._db.execute(f"SELECT request_id, user_id FROM served WHERE request_id IN ({marks})", part):
                    out[rid] = (user, set())
                for rid, item in self._db.execute(
                        f"SELECT request_id, item_id FROM served_items WHERE request_id IN ({marks})", part):
                    out[rid][1].add(item)
        return out

    def iter_served(self) -> tuple[list[dict[str, Any]], list[tuple[str, int, str, float, str]]]:
        """Every logged response (dicts of ``SERVED_COLUMNS``, JSON decoded, in log order) and every served
        position (request_id, position, item_id, score, source), in one read transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                rows = self._db.execute(f"SELECT {', '.join(SERVED_COLUMNS)} FROM served ORDER BY rowid").fetchall()
                items = self._db.execute(
                    "SELECT request_id, position, item_id, score, source FROM served_items").fetchall()
            finally:
                self._db.execute("COMMIT")
        served = []
        for r in rows:
            rec = dict(zip(SERVED_COLUMNS, r))
            for key in ("emotion_probs", "intent_probs", "modalities_used", "fusion_weights", "context"):
                rec[key] = None if rec[key] is None else json.loads(rec[key])
            served.append(rec)
        return served, items

    def iter_events(self, origin: str | None = None) -> Iterator[dict[str, Any]]:
        """Every event in log order (of one ``origin`` if given)."""
        with self._lock:
            rows = self._events_after(0, origin)
        yield from rows

    def counts(self) -> dict[str, int]:
        return {t: self._query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("items", "users", "events")}


def _item_row(item: Mapping[str, Any]) -> dict[str, Any]:
    created = item.get("created_at")
    if hasattr(created, "timestamp"):
        created = created.timestamp()
    return {
        "item_id": str(item["item_id"]),
        "title": str(item.get("title") or ""),
        "tags": json.dumps([dict(t) for t in item.get("tags") or []], ensure_ascii=False),
        "creator_id": None if item.get("creator_id") is None else str(item["creator_id"]),
        "style": None if item.get("style") is None else str(item["style"]),
        "image_path": None if item.get("image_path") is None else str(item["image_path"]),
        "created_at": float(created) if created is not None else time.time(),
        "origin": item.get("origin", "catalog"),
    }


def events_to_interactions(events: Iterable[Mapping[str, Any]]):
    """Event log -> interactions frame (user_id, item_id, label, timestamp, session_id), the ranker's input.

    One row per (user, item): label 1 when the user bookmarked it (UMAIR-FPS convention), else 0 (seen).
    """
    frame = pd.DataFrame(list(events), columns=list(EVENT_COLUMNS))
    if frame.empty:
        return pd.DataFrame(columns=["user_id", "item_id", "label", "timestamp", "session_id"])
    frame["label"] = (frame["type"] == "bookmark").astype("int64")
    out = (
        frame.groupby(["user_id", "item_id"], sort=False)
        .agg(label=("label", "max"), timestamp=("ts", "max"), session_id=("session_id", "last"))
        .reset_index()
    )
    return out


@dataclass
class ServedInteractions:
    """Impressions rebuilt from the event log with the context they were served in.

    ``frame``: user_id, item_id, label, timestamp, session_id, request_id, position, score, source, the
    ``schema``'s columns and one ``context_<key>`` column per explicit context key. A served position is one
    row (session_id = request_id; label 1 when a click or bookmark answers it, else 0: served, not clicked);
    events that answer no logged list keep ``events_to_interactions``'s rows (request_id and context empty).
    ``affect``: the served readings, one row per request_id (index ``session_id``) in ``schema``'s columns
    (``AffectContextSchema.served_state``: probabilities, confidence, signals used); None when no list
    was served with an affect reading.
    """

    frame: Any
    affect: Any
    schema: Any


def served_interactions(store: "ServiceStore") -> ServedInteractions:
    """The impressions of ``store``'s log (``ServedInteractions``).

    Feedback is matched to a served list by its ``request_id``; feedback naming none is matched to the latest
    list that served that user the item before the event (by the event log's sequence), if any.
    Readings with other intent labels than the latest one (an affect model swapped) keep no affect row.
    """
    served, positions = store.iter_served()
    events = list(store.iter_events())
    by_request = {rec["request_id"]: rec for rec in served}
    order = {rec["request_id"]: n for n, rec in enumerate(served)}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    latest: dict[tuple[str, str], list[tuple[int, str]]] = {}  # (user, item) -> [(events_seq, request_id)]
    for rid, pos, item, score, source in sorted(positions, key=lambda p: (order.get(p[0], -1), p[1])):
        rec = by_request.get(rid)
        if rec is None:
            continue
        rows[(rid, item)] = {"user_id": rec["user_id"], "item_id": item, "label": 0, "timestamp": rec["ts"],
                             "session_id": rid, "request_id": rid, "position": pos, "score": score, "source": source}
        latest.setdefault((rec["user_id"], item), []).append((rec["events_seq"], rid))
    rest = []
    for e in events:
        key = None
        if e.get("request_id") and (e["request_id"], e["item_id"]) in rows:
            key = (e["request_id"], e["item_id"])
        elif not e.get("request_id"):
            before = [rid for seq, rid in latest.get((e["user_id"], e["item_id"]), []) if seq < e["seq"]]
            key = (before[-1], e["item_id"]) if before else None
        if key is None:
            rest.append(e)
        elif e["type"] in POSITIVE_EVENTS:
            rows[key]["label"] = 1
    frame = pd.DataFrame(list(rows.values()), columns=["user_id", "item_id", "label", "timestamp", "session_id",
                                                       "request_id", "position", "score", "source"])
    affect, schema = None, None
    read = [rec for rec in served if rec["intent_probs"] is not None and rec["emotion_probs"] is not None]
    if read:
        schema = AffectContextSchema.served_state(list(read[-1]["intent_probs"]))
        same = [rec for rec in read if list(rec["intent_probs"]) == list(read[-1]["intent_probs"])]
        affect = schema.frame([rec["request_id"] for rec in same], [_Reading(rec) for rec in same])
        frame = frame.join(affect, on="session_id")
    given = {rec["request_id"]: rec["context"] for rec in served if rec["context"]}
    for key in sorted({k for ctx in given.values() for k in ctx}):
        values = frame["request_id"].map(lambda rid: given.get(rid, {}).get(key))
        numeric = all(isinstance(v, (int, float)) for v in values.dropna())
        frame[f"context_{key}"] = values.astype(float) if numeric else values.map(lambda v: None if v is None else str(v))
    legacy = events_to_interactions(rest)
    if len(frame) and len(legacy):
        out = pd.concat([frame, legacy], ignore_index=True)
    else:
        out = frame if len(frame) else legacy.reindex(columns=[*legacy.columns, *[c for c in frame.columns
                                                                                 if c not in legacy.columns]])
    return ServedInteractions(out.reset_index(drop=True), affect, schema)


@dataclass(frozen=True)
class _Reading:
    """A logged reading as the affect state ``AffectContextSchema.encode`` reads (no embedding: never logged)."""

    rec: Mapping[str, Any]

    @property
    def emotion_probs(self) -> dict[str, float]:
        return self.rec["emotion_probs"]

    @property
    def intent_probs(self) -> dict[str, float]:
        return self.rec["intent_probs"]

    @property
    def confidence(self) -> float:
        return float(self.rec["confidence"])

    @property
    def modalities_used(self) -> list[str]:
        return list(self.rec["modalities_used"] or [])


def _open_existing(path: str | Path) -> "ServiceStore":
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no service database (expected the SQLite file `aigcrec serve` writes)"
        )
    return ServiceStore(path)


def interactions_from_db(path: str | Path):
    """Interactions frame of a service database's event log (for ``aigcrec train ranker --events``): the
    served impressions with their context columns plus the other events (``served_interactions``)."""
    return served_from_db(path).frame


def served_from_db(path: str | Path) -> ServedInteractions:
    """``served_interactions`` of a service database file (the retrieval and ranking trainers' input)."""
    store = _open_existing(path)
    try:
        return served_interactions(store)
    finally:
        store.close()
