"""One catalog frame from either catalog format, for the content encoder (``aigcrec encode --catalog``).

Recognised by the header of ``<dir>/items.csv``:

- **MovieLens with posters**: columns ``poster`` and ``genres`` (see :mod:`aigcrec.data.movielens`);
  tags are the genres (language ``en``), the image is the poster.
- **aigcrec world**: columns ``image`` and ``tags``, where ``tags`` is a JSON list of
  ``{"text": ..., "lang": ...}`` and ``image`` a path relative to the folder; the other columns
  (title_ja, title_zh, creator_id, series_id, created_at, subject, style, palette, ...) pass through.
- **context-aware rating set** (recognised by ``context.json`` beside ``items.csv``; see
  :mod:`aigcrec.data.context`): no images; the tags are the genres, then the values of the metadata
  columns (an artist, a city; language ``en``), which also pass through as columns. An item with no title,
  no genres and no metadata (depaulmovie's IMDb ids) is titled by its id, so that it still has a text to be
  served by (its text vector then carries nothing but the id); the report counts those
  (``items.titled_by_id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from aigcrec.data.checks import (
    check_nonempty,
    check_unique,
    read_csv,
    relative_file,
    require_dir,
    require_file,
    value_counts,
)
from aigcrec.data.context import ITEMS_COLUMNS as CONTEXT_ITEMS_COLUMNS
from aigcrec.data.context import read_items as read_context_items
from aigcrec.data.errors import DataError
from aigcrec.data.movielens import read_items
from aigcrec.data.report import DatasetReport
from aigcrec.data.schemas import Tag

CATALOG_COLUMNS = ("item_id", "title", "text", "tags", "image_path")
WORLD_COLUMNS = ("item_id", "title", "tags", "image")


@dataclass
class Catalog:
    """``items``: one row per item with :data:`CATALOG_COLUMNS` first (tags: list of ``{"text", "lang"}``
    dicts; image_path: absolute str or None; text: title then tag texts), then any extra columns."""

    root: Path
    format: str
    items: pd.DataFrame
    report: DatasetReport


def item_text(title: str, tags: list[dict[str, str]]) -> str:
    """The text an encoder reads for an item: ``"<title>. <tag>, <tag>, ..."`` (title alone if no tags)."""
    words = ", ".join(t["text"] for t in tags)
    return f"{title}. {words}" if title and words else title or words


def detect_format(root: Path) -> str:
    """``"context"`` when ``context.json`` is beside ``items.csv``, else ``"movielens"`` or ``"world"`` from the
    header of ``items.csv``."""
    path = require_file(root / "items.csv", "items.csv of a MovieLens-with-posters, aigcrec world or "
                                            "context-aware rating folder")
    if (root / "context.json").is_file():
        return "context"
    header = set(read_csv(path, ("item_id",)).columns)
    if {"poster", "genres"} <= header:
        return "movielens"
    if {"image", "tags"} <= header:
        return "world"
    raise DataError(path, "unrecognised catalog header",
                    expected="columns poster+genres (MovieLens) or image+tags (aigcrec world)",
                    got=sorted(header))


def _movielens(root: Path, check_images: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    items, missing = read_items(root, check_images)
    tags = items["genres"].map(lambda gs: [{"text": g, "lang": "en"} for g in gs])
    frame = pd.DataFrame({
        "item_id": items["item_id"],
        "title": items["title"],
        "text": [item_text(t, g) for t, g in zip(items["title"], tags)],
        "tags": tags,
        "image_path": items["poster_path"],
        "release_year": items["release_year"],
    })
    return frame, {"title": missing["items.title"], "tags": missing["items.genres"],
                   "image": missing["items.poster"]}


def _parse_tags(value: str, path: Path, row: int) -> list[dict[str, str]]:
    if not value.strip():
        return []
    expected = 'a JSON list of {"text": ..., "lang": ...}'
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise DataError(path, "not valid JSON", row=row, field="tags", expected=expected, got=value) from None
    if not isinstance(data, list):
        raise DataError(path, "not a list", row=row, field="tags", expected=expected, got=value)
    try:
        return [Tag.model_validate(t).model_dump() for t in data]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(path, f"bad tag ({where}: {first['msg']})", row=row, field="tags", expected=expected,
                        got=value) from None


def _world(root: Path, check_images: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    path = root / "items.csv"
    raw = read_csv(path, WORLD_COLUMNS)
    item_id = raw["item_id"].str.strip()
    check_nonempty(item_id, path, "item_id")
    check_unique(item_id, path, "item_id")
    tags = [_parse_tags(v, path, i + 1) for i, v in enumerate(raw["tags"])]
    image = raw["image"].str.strip()
    image_path = [relative_file(root, v, path, i + 1, "image", must_exist=check_images) if v else None
                  for i, v in enumerate(image)]
    title = raw["title"].str.strip()
    frame = pd.DataFrame({
        "item_id": item_id,
        "title": title,
        "text": [item_text(t, g) for t, g in zip(title, tags)],
        "tags": pd.Series(tags, dtype=object),
        "image_path": pd.Series(image_path, dtype=object),
    })
    extra = raw.drop(columns=[c for c in WORLD_COLUMNS if c in raw.columns])
    frame = pd.concat([frame, extra], axis=1)
    missing = {"title": int(title.eq("").sum()), "tags": sum(not t for t in tags),
               "image": int(image.eq("").sum())}
    return frame, missing


def _context(root: Path, check_images: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """A context-aware rating folder's items (no images: ``check_images`` has nothing to check)."""
    items = read_context_items(root)
    meta = [c for c in items.columns if c not in CONTEXT_ITEMS_COLUMNS]
    tags = [[{"text": g, "lang": "en"} for g in gs] + [{"text": row[c], "lang": "en"} for c in meta if row[c]]
            for gs, row in zip(items["genres"], items[meta].to_dict(orient="records"))]
    by_id = items["title"].eq("").to_numpy() & (pd.Series(tags).map(len).eq(0).to_numpy())
    title = items["title"].where(~by_id, items["item_id"])
    frame = pd.DataFrame({
        "item_id": items["item_id"],
        "title": title,
        "text": [item_text(t, g) for t, g in zip(title, tags)],
        "tags": pd.Series(tags, dtype=object, index=items.index),
        "image_path": pd.Series([None] * len(items), dtype=object, index=items.index),
    })
    frame = pd.concat([frame, items[meta]], axis=1)
    missing = {"title": int(items["title"].eq("").sum()), "tags": sum(not t for t in tags), "image": len(items),
               "titled_by_id": int(by_id.sum())}
    return frame, missing


_READERS = {"movielens": _movielens, "world": _world, "context": _context}


def read_catalog(root: str | Path, check_images: bool = True) -> Catalog:
    """Load and validate a catalog folder of any format (:func:`detect_format`), with its report."""
    root = require_dir(root)
    fmt = detect_format(root)
    items, missing = _READERS[fmt](root, check_images)
    report = DatasetReport(
        format=f"catalog:{fmt}",
        root=str(root),
        counts={"items": len(items), "items_with_image": int(items["image_path"].notna().sum()),
                "tags": int(items["tags"].map(len).sum())},
        distributions={"tag_language": value_counts(t["lang"] for ts in items["tags"] for t in ts)},
        missing={f"items.{k}": v for k, v in missing.items()},
    )
    return Catalog(root=root, format=fmt, items=items, report=report)


def load_catalog(root: str | Path, check_images: bool = True) -> pd.DataFrame:
    """The items of a catalog folder: :data:`CATALOG_COLUMNS` first, then the format's extra columns."""
    return read_catalog(root, check_images).items
