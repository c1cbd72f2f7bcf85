"""The serving state in memory: items (metadata and content vectors, growable) and what each user did.

SQLite is the durable copy; this is what a request reads, so the hot path touches no disk.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Mapping, Sequence

import numpy as np

from aigcrec.service.store import POSITIVE_EVENTS

HEAD = 4096
"""Length of the cached newest / popular rankings."""
POPULAR_TTL_S = 1.0


class GrowableMatrix:
    """A float32 ``(n, d)`` matrix with amortised O(1) row appends (capacity doubles)."""

    def __init__(self, dim: int, capacity: int = 1024) -> None:
        self._data = np.zeros((max(capacity, 1), dim), dtype=np.float32)
        self.n = 0

    @property
    def dim(self) -> int:
        return self._data.shape[1]

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.n]

    def extend(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, self.dim)  # (m, d)
        if self.n + len(rows) > len(self._data):
            grown = np.zeros((max(2 * len(self._data), self.n + len(rows)), self.dim), dtype=np.float32)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n : self.n + len(rows)] = rows
        self.n += len(rows)


class ServedCatalog:
    """Items by row: ``item_ids[row]``, metadata lists, ``features[name]`` (n, d_name) and popularity."""

    def __init__(self, feature_dims: Mapping[str, int], capacity: int = 1024) -> None:
        self.item_ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.meta: list[dict[str, Any]] = []
        self.features = {name: GrowableMatrix(d, capacity) for name, d in feature_dims.items()}
        self._created = GrowableMatrix(1, capacity)
        self._popularity = GrowableMatrix(1, capacity)
        self._lock = threading.Lock()
        # Cached head of the newest / most popular rankings: a full argpartition over 100k items per
        # request would dominate the request's CPU time.
        self._newest: np.ndarray | None = None
        self._popular: np.ndarray | None = None
        self._popular_at = 0.0

    def __len__(self) -> int:
        return len(self.item_ids)

    def add(self, metas: Sequence[Mapping[str, Any]], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
        """Append items (metadata dicts with ``item_id``) and their vectors (name -> (m, d)); return rows."""
        missing = set(self.features) - set(vectors)
        if missing:
            raise ValueError(
                f"catalog.add: expected vectors {sorted(self.features)}, missing {sorted(missing)}"
            )
        with self._lock:
            start = len(self.item_ids)
            for i, m in enumerate(metas):
                if m["item_id"] in self.row_of:
                    raise ValueError(f"catalog.add: item_id {m['item_id']!r} already exists")
                self.row_of[m["item_id"]] = start + i
                self.item_ids.append(m["item_id"])
                self.meta.append(dict(m))
            for name, mat in self.features.items():
                mat.extend(vectors[name])
            self._created.extend(np.array([float(m.get("created_at") or time.time()) for m in metas]))
            self._popularity.extend(np.zeros(len(metas)))
            self._newest = None
        return np.arange(start, start + len(metas))

    def features_of(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: mat.values[rows] for name, mat in self.features.items()}

    def bump_popularity(self, rows: np.ndarray) -> None:
        np.add.at(self._popularity.values[:, 0], rows, 1.0)

    def newest(self, n: int) -> np.ndarray:
        """Rows of the ``n`` most recently created items, newest first (exact: recomputed on every add)."""
        if n > HEAD or self._newest is None:
            head = _top(self._created.values[:, 0], max(n, HEAD))
            self._newest = head[:HEAD]
            return head[:n]
        return self._newest[:n]

    def most_popular(self, n: int) -> np.ndarray:
        """Rows of the ``n`` items with most positive events (refreshed at most every ``POPULAR_TTL_S``)."""
        if n > HEAD or self._popular is None or time.monotonic() - self._popular_at > POPULAR_TTL_S:
            head = _top(self._popularity.values[:, 0], max(n, HEAD))
            self._popular, self._popular_at = head[:HEAD], time.monotonic()
            return head[:n]
        return self._popular[:n]


def _top(values: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(values))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-values, n - 1)[:n]
    return part[np.argsort(-values[part], kind="stable")]


class UserActivity:
    """Per user: recent positive items (the retrieval query) and every item shown or acted on (seen)."""

    def __init__(self, history_len: int) -> None:
        self.history_len = history_len
        self.positives: dict[str, deque[int]] = {}
        self.seen: dict[str, set[int]] = {}

    def observe(self, user_id: str, row: int, event_type: str) -> None:
        self.seen.setdefault(user_id, set()).add(row)
        if event_type in POSITIVE_EVENTS:
            self.positives.setdefault(user_id, deque(maxlen=self.history_len)).append(row)

    def history(self, user_id: str, last: int | None = None) -> list[int]:
        """The user's recent positive rows, oldest first (the ``last`` ones when given)."""
        rows = list(self.positives.get(user_id, ()))
        return rows[-last:] if last else rows

    def seen_rows(self, user_id: str) -> set[int]:
        return self.seen.get(user_id, set())
