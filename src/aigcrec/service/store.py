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
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

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

    def add_item(self, item: Mapping[str, Any], image: bytes, vectors: Mapping[str, np.ndarray]) -> None:
        """Persist an item posted through the API with its image and content vectors."""
        row = _item_row({**item, "origin": "api"})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    f"INSERT INTO items({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * 8)})",
                    [row[c] for c in ITEM_COLUMNS],
                )
                self._db.execute(
                    "INSERT INTO item_blobs(item_id, image, vectors) VALUES (?, ?, ?)",
                    (row["item_id"], image, _pack_vectors(vectors)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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
    def append_events(self, events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Append a feedback batch durably; returns the first and last sequence numbers given."""
        if not events:
            raise ValueError("append_events: expected at least one event, got an empty batch")
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO users(user_id, first_seen) VALUES (?, ?)",
                    ((u, now) for u in {e["user_id"] for e in events}),
                )
                first = None
                for e in events:
                    cur = self._db.execute(
                        "INSERT INTO events(user_id, item_id, type, value, ts, session_id, origin) "
                        "VALUES (?, ?, ?, ?, ?, ?, 'api')",
                        (
                            e["user_id"],
                            e["item_id"],
                            e["type"],
                            e.get("value"),
                            e.get("ts") or now,
                            e.get("session_id"),
                        ),
                    )
                    first = cur.lastrowid if first is None else first
                last = cur.lastrowid
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(first), int(last)

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
