"""Context-aware rating sets: ratings with the rater's context (mood, intent, situation) per rating.

Layout (``../shared/datasets/README.md``, "Context-aware rating layout"; see ``docs/data.md``)::

    context.json  name, rating_scale [min, max], context {column: {type, kind, values | range, missing, ...}}
    ratings.csv   user_id,item_id,rating,timestamp, then one column per context variable
                  ids: non-empty strings; rating: a number in rating_scale; timestamp: unix s or empty;
                  categorical context: a label of the column's ``values`` or empty (missing);
                  numeric context: a number (within ``range`` when given) or empty (missing)
    items.csv     item_id,title,genres ('|'-separated; title/genres may be empty) + any metadata columns
    users.csv     optional: user_id + any attribute columns

A missing context value is normal (a rating given without that context): it loads as ``None`` / NaN and
is counted. A rated user without a ``users.csv`` row loads without attributes, counted. Anything that
breaks meaning (an id, a rating, a context label outside the declared codebook, a number, a reference to
an unknown item, a malformed ``context.json``) raises :class:`DataError` naming file, row and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aigcrec.data.checks import (
    check_in,
    check_nonempty,
    check_unique,
    first_row,
    genre_lists,
    int_column,
    number_column,
    read_bytes,
    read_csv,
    require_dir,
    value_counts,
)
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport

RATINGS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEMS_COLUMNS = ("item_id", "title", "genres")
CONTEXT_KINDS = ("emotion", "mood", "intent", "situation")
MISSING = "(missing)"  # how a missing context value is shown in distributions


class ContextColumn(BaseModel):
    """One context variable of ``context.json``."""

    model_config = ConfigDict(extra="allow")  # note, unit, ... are free
    type: Literal["categorical", "numeric"]
    kind: Literal["emotion", "mood", "intent", "situation"]
    values: Optional[list[str]] = None
    range: Optional[tuple[float, float]] = None
    missing: Optional[int] = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "ContextColumn":
        if self.type == "categorical":
            if not self.values:
                raise ValueError("a categorical column needs 'values' (its labels, in codebook order)")
            if any(not v.strip() for v in self.values) or len(set(self.values)) != len(self.values):
                raise ValueError(f"'values' must be distinct non-empty labels, got {self.values}")
        elif self.values is not None:
            raise ValueError("'values' is for categorical columns; a numeric one may give 'range'")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"'range' must be [min, max] with min < max, got {list(self.range)}")
        return self


class ContextSchema(BaseModel):
    """``context.json``: the set's name, rating scale and context columns (in ``ratings.csv`` order)."""

    model_config = ConfigDict(extra="allow")  # source, licence, citation, counts, notes, files
    name: str = Field(min_length=1)
    rating_scale: tuple[float, float]
    context: dict[str, ContextColumn]

    @model_validator(mode="after")
    def _check(self) -> "ContextSchema":
        if not self.rating_scale[0] < self.rating_scale[1]:
            raise ValueError(f"rating_scale must be [min, max] with min < max, got {list(self.rating_scale)}")
        clash = sorted(set(self.context) & {*RATINGS_COLUMNS})
        if clash:
            raise ValueError(f"context columns may not reuse the names {clash} of ratings.csv's own columns")
        return self

    @property
    def midpoint(self) -> float:
        return (self.rating_scale[0] + self.rating_scale[1]) / 2


@dataclass
class ContextRatings:
    """A loaded context-aware rating folder.

    - ``ratings``: user_id, item_id (str), rating (float64), timestamp (float64, NaN when empty), then one
      column per context variable: categorical as str or ``None``, numeric as float64 (NaN = missing);
    - ``items``: item_id, title (str), genres (list[str]), then the file's metadata columns (str or ``None``);
    - ``users``: user_id then the attributes of ``users.csv`` (str or ``None``); users who rate without a
      row (or every user, without ``users.csv``) have every attribute ``None``;
    - ``schema``: the parsed ``context.json``.
    """

    root: Path
    schema: ContextSchema
    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    report: DatasetReport

    @property
    def context_columns(self) -> list[str]:
        return list(self.schema.context)

    def default_threshold(self) -> float:
        """4 on a 1-5 scale (the convention of the ranking literature), else the scale's midpoint."""
        return 4.0 if tuple(self.schema.rating_scale) == (1, 5) else self.schema.midpoint

    def labels(self, threshold: float | None = None) -> pd.Series:
        """The label of each rating, :math:`y = [r \\ge t]` as int64 (0/1), ``t`` = ``threshold`` or
        :meth:`default_threshold`; a ``t`` outside (min, max] of the scale is a ``ValueError``. The one
        label rule of these sets (the ranker's dataset, the benchmark, the ``context`` catalog layout)."""
        lo, hi = self.schema.rating_scale
        t = self.default_threshold() if threshold is None else float(threshold)
        if not lo < t <= hi:
            raise ValueError(f"threshold: expected a rating in ({lo:g}, {hi:g}], got {t:g}")
        return (self.ratings["rating"] >= t).astype("int64")


def read_schema(root: Path) -> ContextSchema:
    """Parse and validate ``context.json``; the error names the offending key path as the field."""
    path = root / "context.json"
    try:
        data = json.loads(read_bytes(path).decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc.msg})", row=exc.lineno, expected="a JSON object") from None
    if not isinstance(data, dict):
        raise DataError(path, "not a JSON object", expected="an object with name, rating_scale, context",
                        got=type(data).__name__)
    try:
        return ContextSchema.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        got = first.get("input")
        raise DataError(path, f"bad context.json ({first['msg']})", field=where,
                        expected="see the context-aware rating layout in docs/data.md",
                        got=got if isinstance(got, (str, int, float)) else None) from None


def _text(raw: pd.DataFrame, col: str) -> pd.Series:
    """Stripped strings, empty -> ``None``."""
    values = raw[col].str.strip()
    return values.astype(object).where(values.ne(""), None)


def _string_ids(raw: pd.DataFrame, col: str, path: Path) -> pd.Series:
    check_nonempty(raw[col], path, col)
    return raw[col].str.strip()


def read_items(root: Path) -> pd.DataFrame:
    """``items.csv`` of a context-aware rating folder (see ``ContextRatings.items``), validated."""
    path = root / "items.csv"
    raw = read_csv(path, ITEMS_COLUMNS)
    item_id = _string_ids(raw, "item_id", path)
    check_unique(item_id, path, "item_id")
    genres = genre_lists(raw, path)
    items = pd.DataFrame({"item_id": item_id, "title": raw["title"].str.strip(), "genres": genres})
    for col in raw.columns.drop(list(ITEMS_COLUMNS)):
        items[col] = _text(raw, col)
    return items


def _read_users(root: Path) -> pd.DataFrame | None:
    path = root / "users.csv"
    if not path.exists():
        return None
    raw = read_csv(path, ("user_id",))
    user_id = _string_ids(raw, "user_id", path)
    check_unique(user_id, path, "user_id")
    users = pd.DataFrame({"user_id": user_id})
    for col in raw.columns.drop("user_id"):
        users[col] = _text(raw, col)
    return users


def _read_ratings(root: Path, schema: ContextSchema, item_ids: pd.Series) -> pd.DataFrame:
    path = root / "ratings.csv"
    raw = read_csv(path, (*RATINGS_COLUMNS, *schema.context))
    extra = [c for c in raw.columns if c not in RATINGS_COLUMNS and c not in schema.context]
    if extra:
        raise DataError(path, "column not declared in context.json", field=extra[0],
                        expected=f"columns {[*RATINGS_COLUMNS, *schema.context]}", got=list(raw.columns))
    lo, hi = schema.rating_scale
    ratings = pd.DataFrame({
        "user_id": _string_ids(raw, "user_id", path),
        "item_id": _string_ids(raw, "item_id", path),
        "rating": number_column(raw, "rating", path, lo=lo, hi=hi),
        "timestamp": int_column(raw, "timestamp", path, required=False, lo=0).astype("float64"),
    })
    unknown = ~ratings["item_id"].isin(item_ids)
    if unknown.any():
        row = first_row(unknown)
        raise DataError(path, "item not in items.csv", row=row, field="item_id",
                        expected="an item_id listed in items.csv", got=ratings["item_id"].iloc[row - 1])
    for name, col in schema.context.items():
        if col.type == "categorical":
            check_in(raw[name].str.strip(), col.values, path, name, allow_empty=True)
            ratings[name] = _text(raw, name)
        else:
            span = col.range or (None, None)
            ratings[name] = number_column(raw, name, path, required=False, lo=span[0], hi=span[1])
    return ratings


def load_context(root: str | Path) -> ContextRatings:
    """Load and validate a context-aware rating folder (any folder in the layout)."""
    root = require_dir(root)
    schema = read_schema(root)
    items = read_items(root)
    ratings = _read_ratings(root, schema, items["item_id"])
    users = _read_users(root)
    has_users_file = users is not None
    users = users if users is not None else pd.DataFrame({"user_id": pd.Series([], dtype=object)})
    orphans = pd.Index(ratings["user_id"].unique()).difference(pd.Index(users["user_id"]))
    if len(orphans):
        extra = pd.DataFrame({"user_id": list(orphans), **{c: [None] * len(orphans) for c in users.columns[1:]}})
        users = pd.concat([users, extra], ignore_index=True)

    missing = {f"ratings.{c}": int(ratings[c].isna().sum()) for c in schema.context}
    missing["ratings.timestamp"] = int(ratings["timestamp"].isna().sum())
    missing["ratings.no_context"] = int(ratings[list(schema.context)].isna().all(axis=1).sum()) if schema.context else 0
    missing.update({"items.title": int(items["title"].eq("").sum()), "items.genres": int(items["genres"].map(len).eq(0).sum())})
    missing.update({f"users.{c}": int(users[c].isna().sum()) for c in users.columns[1:]})
    distributions: dict[str, dict[str, int]] = {
        "rating": {str(k): v for k, v in sorted(value_counts(ratings["rating"].map(_fmt)).items(),
                                                key=lambda kv: float(kv[0]))}}
    for name, col in schema.context.items():
        values = ratings[name].map(_fmt) if col.type == "numeric" else ratings[name]
        if col.type == "categorical":  # codebook order, as context.json lists them
            counts = value_counts(values.dropna())
            distributions[f"context.{name}"] = {v: counts.get(v, 0) for v in col.values}
            distributions[f"context.{name}"][MISSING] = int(values.isna().sum())
    report = DatasetReport(
        format="context",
        root=str(root),
        counts={
            "ratings": len(ratings), "users": len(users), "items": len(items),
            "rated_users": int(ratings["user_id"].nunique()), "rated_items": int(ratings["item_id"].nunique()),
            "users_only_in_ratings": len(orphans) if has_users_file else 0,
            "context_columns": len(schema.context),
            "duplicate_rows": int(ratings.duplicated().sum()),
            "duplicate_user_item_pairs": int(ratings.duplicated(["user_id", "item_id"]).sum()),
        },
        distributions=distributions,
        missing=missing,
    )
    report.notes += _declared_mismatches(schema, ratings, users, items, has_users_file)
    if not has_users_file:
        report.notes.append("no users.csv: every user loads without attributes")
    elif len(orphans):
        report.notes.append(f"{len(orphans)} rated users have no users.csv row; kept with no attributes")
    return ContextRatings(root, schema, ratings, items, users, report)


def _fmt(x: Any) -> str:
    """A number as a short label (``4.0`` -> ``"4"``)."""
    return f"{x:g}" if isinstance(x, (float, np.floating)) and not np.isnan(x) else str(x)


def _declared_mismatches(schema: ContextSchema, ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame,
                         has_users_file: bool) -> list[str]:
    """Notes where context.json's declared counts differ from the files (stale metadata, not bad data)."""
    notes = []
    for name, col in schema.context.items():
        found = int(ratings[name].isna().sum())
        if col.missing is not None and col.missing != found:
            notes.append(f"context.json declares {col.missing} missing '{name}' values; ratings.csv has {found}")
    declared = getattr(schema, "counts", None)
    if isinstance(declared, dict):
        found = {"ratings": len(ratings), "items": len(items), "users": int(ratings["user_id"].nunique())}
        for key, value in found.items():
            if key in declared and declared[key] != value:
                notes.append(f"context.json declares {declared[key]} {key}; the files have {value}")
    return notes
