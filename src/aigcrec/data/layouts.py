"""The catalog layouts ``aigcrec build`` and ``aigcrec serve --catalog`` read, each with its interactions source.

Items always come from ``items.csv`` through :func:`aigcrec.data.catalog.read_catalog`; a layout adds how
the folder is recognised and where its past interactions come from, as one frame with
:data:`INTERACTION_COLUMNS` (``label`` 1 = the user wanted it: bookmarked, liked, rated >= 4; 0 = seen only).

| layout | recognised by | interactions |
|---|---|---|
| ``world`` | ``world.json`` (a generated world) | ``interactions.csv`` |
| ``movielens`` | ``items.csv`` with ``poster`` + ``genres`` | ``ratings.csv``, label = rating >= 4 |
| ``catalog`` | ``items.csv`` with ``image`` + ``tags``, no ``world.json`` | ``interactions.csv`` (optional) |
| ``context`` | ``context.json`` + ``ratings.csv`` + ``items.csv`` | ``ratings.csv``, label = rating >= threshold |

``interactions.csv``: ``user_id, item_id, label (0/1), timestamp (unix seconds)`` and optionally
``session_id``; any other column is ignored. ``context``: a context-aware rating set
(:mod:`aigcrec.data.context`; no images, items served text-only), label by
:meth:`aigcrec.data.context.ContextRatings.labels` (4 on a 1-5 scale, the scale's midpoint otherwise); an
empty timestamp reads as 0 (these sets have none; the stable sort keeps the file's order); the context
columns of each rating are the ranker's explicit context (``aigcrec.ranking.data.context_dataset``), not
part of this frame. A new layout is one more :class:`Layout` in :data:`LAYOUTS`: a ``detect`` test and an
``interactions`` reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from aigcrec.data.checks import check_in, check_nonempty, first_row, read_csv, require_dir
from aigcrec.data.context import load_context
from aigcrec.data.errors import DataError
from aigcrec.data.movielens import load_movielens

INTERACTION_COLUMNS = ("user_id", "item_id", "label", "timestamp", "session_id")


@dataclass(frozen=True)
class Layout:
    """``detect(root)``: whether a folder is in this layout; ``interactions(root, item_ids)``: its past
    interactions (:data:`INTERACTION_COLUMNS`; ids as str; rows naming an item not in ``item_ids`` are an
    error naming the row)."""

    name: str
    detect: Callable[[Path], bool]
    interactions: Callable[[Path, set[str]], pd.DataFrame]
    description: str


def read_interactions_csv(path: Path, item_ids: set[str]) -> pd.DataFrame:
    """``interactions.csv`` validated: non-empty ids, known items, label 0/1, numeric timestamps."""
    raw = read_csv(path, INTERACTION_COLUMNS[:4])
    for col in ("user_id", "item_id"):
        raw[col] = raw[col].str.strip()
        check_nonempty(raw[col], path, col)
    check_in(raw["item_id"], item_ids, path, "item_id")
    check_in(raw["label"].str.strip(), ("0", "1"), path, "label")
    stamps = pd.to_numeric(raw["timestamp"].str.strip(), errors="coerce")
    if stamps.isna().any():
        row = first_row(stamps.isna())
        raise DataError(path, "bad value", row=row, field="timestamp", expected="unix seconds",
                        got=raw["timestamp"].iloc[row - 1])
    session = raw["session_id"].str.strip() if "session_id" in raw else pd.Series("", index=raw.index)
    return pd.DataFrame({
        "user_id": raw["user_id"], "item_id": raw["item_id"],
        "label": raw["label"].str.strip().astype("int64"), "timestamp": stamps.astype("float64"),
        "session_id": session.astype(object).where(session.ne(""), None),
    })


def _interactions_file(root: Path, item_ids: set[str]) -> pd.DataFrame:
    path = root / "interactions.csv"
    if not path.is_file():  # a catalog without a log yet: served cold, but nothing to train a ranker on
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "timestamp" else object)
                             for c in INTERACTION_COLUMNS})
    return read_interactions_csv(path, item_ids)


def _ratings(root: Path, item_ids: set[str]) -> pd.DataFrame:
    inter = load_movielens(root, check_posters=False).interactions(threshold=4)
    return inter.assign(timestamp=inter["timestamp"].astype("float64"), session_id=None)[list(INTERACTION_COLUMNS)]


def _context_ratings(root: Path, item_ids: set[str]) -> pd.DataFrame:
    """A context-aware rating folder's ratings, labelled by its default threshold (``load_context`` checks
    every item reference against items.csv)."""
    cr = load_context(root)
    labels = cr.labels()
    ratings = cr.ratings
    return pd.DataFrame({"user_id": ratings["user_id"], "item_id": ratings["item_id"], "label": labels,
                         "timestamp": ratings["timestamp"].fillna(0.0).astype("float64"), "session_id": None})


def _is_context(root: Path) -> bool:
    return all((root / name).is_file() for name in ("context.json", "ratings.csv", "items.csv"))


def _items_header(root: Path) -> set[str]:
    path = root / "items.csv"
    return set(read_csv(path, ("item_id",)).columns) if path.is_file() else set()


LAYOUTS: tuple[Layout, ...] = (
    Layout("world", lambda root: (root / "world.json").is_file(), _interactions_file,
           "a generated world (world.json, items.csv + images/, interactions.csv)"),
    Layout("context", _is_context, _context_ratings,
           "a context-aware rating set (context.json, ratings.csv with context columns, items.csv)"),
    Layout("movielens", lambda root: {"poster", "genres"} <= _items_header(root), _ratings,
           "MovieLens with posters (items.csv with poster + genres, ratings.csv)"),
    Layout("catalog", lambda root: {"image", "tags"} <= _items_header(root), _interactions_file,
           "a catalog (items.csv with image + tags, images, optional interactions.csv)"),
)


def detect_layout(root: str | Path) -> Layout:
    """The first layout of :data:`LAYOUTS` that recognises ``root``; a :class:`DataError` otherwise."""
    root = require_dir(root)
    for layout in LAYOUTS:
        if layout.detect(root):
            return layout
    raise DataError(root / "items.csv", "not a catalog folder",
                    expected="one of: " + "; ".join(f"{lay.name}: {lay.description}" for lay in LAYOUTS),
                    got=sorted(_items_header(root)) or "no items.csv")


def load_interactions(root: str | Path, item_ids: set[str], layout: Layout | None = None) -> pd.DataFrame:
    """The past interactions of a catalog folder, sorted by time (stable)."""
    root = require_dir(root)
    frame = (layout or detect_layout(root)).interactions(root, item_ids)
    order = np.argsort(frame["timestamp"].to_numpy(np.float64), kind="stable")
    return frame.iloc[order].reset_index(drop=True)
