"""Durable state of the service: one SQLite file in WAL mode holding the catalog, users and the event log.

The event log is append-only; a feedback batch is acknowledged only after its transaction commits (with
``synchronous=FULL`` the WAL is fsynced first), so an acknowledged event survives ``kill -9``.
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
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT NOT NULL, route TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
    answer TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (route, key));
"""

BUSY_WAIT_MS = 5000
"""How long a write waits for another connection's write transaction."""
IMPORT_WAIT_MS = 600_000
"""How long a starting server process waits for another one's first-start catalog import."""

EVENT_COLUMNS: tuple[str, ...] = ("seq", "user_id", "item_id", "type", "value", "ts", "session_id", "origin")
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
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_WAIT_MS}")
        self._db.executescript(_SCHEMA)

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
                    "INSERT INTO events(user_id, item_id, type, value, ts, session_id, origin) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'api')",
                    (
                        e["user_id"],
                        e["item_id"],
                        e["type"],
                        e.get("value"),
                        now if e.get("ts") is None else e["ts"],
                        e.get("session_id"),
                    ),
                )
                seqs.append(int(cur.lastrowid))
            return answer(seqs[0], seqs[-1]) if answer is not None else (200, "")

        stored = self._idempotent_write(write, idempotency)
        return (seqs[0], seqs[-1]) if stored is None else stored

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
    import pandas as pd

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


def interactions_from_db(path: str | Path):
    """Interactions frame of a service database's event log (for ``aigcrec train ranker --events``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no service database (expected the SQLite file `aigcrec serve` writes)"
        )
    store = ServiceStore(path)
    try:
        return events_to_interactions(store.iter_events())
    finally:
        store.close()
