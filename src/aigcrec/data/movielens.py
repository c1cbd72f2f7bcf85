"""MovieLens-100K with posters: ``ratings.csv``, ``users.csv``, ``items.csv`` and ``posters/``.

Format (see ``docs/data.md``)::

    ratings.csv  user_id,item_id,rating,timestamp        int ids; rating in 0.5..5 in half stars; timestamp unix s
    users.csv    user_id,age,gender,occupation,zip_code  optional file; age int or empty (0 = unknown);
                                                         gender, occupation: any label or empty
    items.csv    item_id,title,genres[,release_year][,poster]
                 release_year int or empty; genres '|'-separated; poster relative path or empty

Ids are returned as strings. Missing optional values (age, gender, occupation, zip code, year, genres,
poster, the whole ``users.csv`` or a rated user absent from it, the ``release_year`` / ``poster`` columns)
load and are counted in the report. Categorical user attributes take any label (``U``, ``unknown``, a new
occupation): real user tables have more than ML-100K's vocabulary, and the labels are counted, not checked.
Anything that breaks meaning (ids, ratings, references, numbers) raises :class:`DataError` with file, row
and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aigcrec.data.checks import (
    check_unique,
    first_row,
    genre_lists,
    id_column,
    int_column,
    number_column,
    read_csv,
    relative_file,
    require_dir,
    value_counts,
)
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport

RATINGS_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
USERS_COLUMNS = ("user_id", "age", "gender", "occupation", "zip_code")
ITEMS_COLUMNS = ("item_id", "title", "genres")
OPTIONAL_ITEMS_COLUMNS = ("release_year", "poster")  # absent in e.g. a MovieLens-latest conversion
GENDERS = ("M", "F")  # ML-100K's labels; others load and are counted (report note)
AGE_UNKNOWN = 0  # the age some MovieLens-layout sets write for "not given": loads as missing


@dataclass
class MovieLens:
    """A loaded MovieLens-with-posters folder.

    - ``ratings``: user_id (str), item_id (str), rating (int64 1..5, or float64 when the file has half
      stars, 0.5..5), timestamp (int64, unix s)
    - ``users``: user_id (str), age (Int64, <NA> if unknown), gender, occupation, zip_code (str or None);
      users that rate but have no ``users.csv`` row are included with every feature None
    - ``items``: item_id (str), title (str), release_year (Int64), genres (list[str]),
      poster_path (absolute str or None)
    """

    root: Path
    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    report: DatasetReport

    def interactions(self, threshold: float = 4) -> pd.DataFrame:
        """Ratings as implicit feedback: ``label = 1`` if ``rating >= threshold`` else 0.

        Columns follow :class:`~aigcrec.data.schemas.Interaction`: user_id, item_id, label, timestamp.
        """
        if not 0.5 <= threshold <= 5:
            raise ValueError(f"threshold: expected a rating in 1..5 (0.5..5 with half stars), got {threshold!r}")
        out = self.ratings[["user_id", "item_id", "timestamp"]].copy()
        out.insert(2, "label", (self.ratings["rating"] >= threshold).astype("int64"))
        return out


def read_items(root: Path, check_posters: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read and validate ``items.csv``; return the items and the count of missing optional values."""
    path = root / "items.csv"
    raw = read_csv(path, ITEMS_COLUMNS)
    for col in OPTIONAL_ITEMS_COLUMNS:  # an absent optional column = every value missing
        if col not in raw.columns:
            raw[col] = ""
    item_id = id_column(raw, "item_id", path)
    check_unique(item_id, path, "item_id")
    genres = genre_lists(raw, path)
    poster = raw["poster"].str.strip()
    poster_path = [
        relative_file(root, p, path, i + 1, "poster", must_exist=check_posters) if p else None
        for i, p in enumerate(poster)
    ]
    items = pd.DataFrame({
        "item_id": item_id,
        "title": raw["title"].str.strip(),
        "release_year": int_column(raw, "release_year", path, required=False),
        "genres": genres,
        "poster_path": pd.Series(poster_path, dtype=object),
    })
    missing = {
        "items.title": int(items["title"].eq("").sum()),
        "items.release_year": int(items["release_year"].isna().sum()),
        "items.genres": int(genres.map(len).eq(0).sum()),
        "items.poster": int(poster.eq("").sum()),
    }
    return items, missing


def _no_users() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series([], dtype=object), "age": pd.array([], dtype="Int64"),
                         **{c: pd.Series([], dtype=object) for c in USERS_COLUMNS[2:]}})


def _read_users(root: Path) -> pd.DataFrame:
    """``users.csv`` (optional: absent = no user features); any categorical label, age 0 = missing."""
    path = root / "users.csv"
    if not path.exists():
        return _no_users()
    raw = read_csv(path, USERS_COLUMNS)
    user_id = id_column(raw, "user_id", path)
    check_unique(user_id, path, "user_id")

    def text(col: str) -> pd.Series:  # empty -> None
        values = raw[col].str.strip()
        return values.astype(object).where(values.ne(""), None)

    age = int_column(raw, "age", path, required=False, lo=0, hi=150)
    return pd.DataFrame({
        "user_id": user_id,
        "age": age.mask(age.eq(AGE_UNKNOWN).fillna(False)),
        "gender": text("gender"),
        "occupation": text("occupation"),
        "zip_code": text("zip_code"),
    })


def _read_ratings(root: Path, item_ids: pd.Series) -> pd.DataFrame:
    path = root / "ratings.csv"
    raw = read_csv(path, RATINGS_COLUMNS)
    ratings = pd.DataFrame({
        "user_id": id_column(raw, "user_id", path),
        "item_id": id_column(raw, "item_id", path),
        "rating": rating_column(raw, "rating", path),
        "timestamp": int_column(raw, "timestamp", path, lo=0).astype("int64"),
    })
    unknown = ~ratings["item_id"].isin(item_ids)
    if unknown.any():
        row = first_row(unknown)
        raise DataError(path, "item not in items.csv", row=row, field="item_id",
                        expected="an item_id listed in items.csv", got=ratings["item_id"].iloc[row - 1])
    return ratings


def rating_column(raw: pd.DataFrame, col: str, path: Path) -> pd.Series:
    """Stars: whole (int64, 1..5) or, when any value has a half, float64 in 0.5..5 (MovieLens-latest)."""
    values = raw[col].str.strip()
    if not values.str.contains(".", regex=False).any():
        return int_column(raw, col, path, lo=1, hi=5).astype("int64")
    num = number_column(raw, col, path)
    bad = (num * 2 != (num * 2).round()) | (num < 0.5) | (num > 5)
    if bad.any():
        row = first_row(bad)
        raise DataError(path, "not a star rating", row=row, field=col, expected="a rating in 0.5..5 in steps of 0.5",
                        got=values.iloc[row - 1])
    return num


def load_movielens(root: str | Path, check_posters: bool = True) -> MovieLens:
    """Load and validate a MovieLens-with-posters folder (``check_posters``: each poster file must exist)."""
    root = require_dir(root)
    items, missing = read_items(root, check_posters)
    users = _read_users(root)
    ratings = _read_ratings(root, items["item_id"])

    # A user who rates but has no users.csv row is a user without features: kept, counted.
    orphans = pd.Index(ratings["user_id"].unique()).difference(pd.Index(users["user_id"]))
    if len(orphans):
        none = [None] * len(orphans)
        extra = pd.DataFrame({"user_id": list(orphans), "age": pd.array(none, dtype="Int64"),
                              "gender": none, "occupation": none, "zip_code": none})
        users = pd.concat([users, extra], ignore_index=True)
    features = users[["age", "gender", "occupation", "zip_code"]]
    missing.update({f"users.{c}": int(features[c].isna().sum()) for c in features.columns})
    missing["users.features"] = int(features.isna().all(axis=1).sum())
    other_genders = value_counts(users["gender"].dropna()[~users["gender"].dropna().isin(GENDERS)])

    dup_pairs = int(ratings.duplicated(["user_id", "item_id"]).sum())
    genre_counts = value_counts(g for gs in items["genres"] for g in gs)
    report = DatasetReport(
        format="movielens",
        root=str(root),
        counts={
            "ratings": len(ratings),
            "users": len(users),
            "items": len(items),
            "items_with_poster": int(items["poster_path"].notna().sum()),
            "rated_users": int(ratings["user_id"].nunique()),
            "rated_items": int(ratings["item_id"].nunique()),
            "users_only_in_ratings": len(orphans),
            "duplicate_user_item_pairs": dup_pairs,
        },
        distributions={
            "rating": {str(k): v for k, v in sorted(value_counts(ratings["rating"].astype(str)).items())},
            "gender": value_counts(users["gender"].fillna("(missing)")),
            "occupation": value_counts(users["occupation"].fillna("(missing)")),
            "genres": genre_counts,
        },
        missing=missing,
    )
    if not (root / "users.csv").exists():
        report.notes.append("no users.csv: every user loads without features")
    if other_genders:
        report.notes.append(f"gender labels other than {'/'.join(GENDERS)} (kept as labels): {other_genders}")
    if len(orphans):
        report.notes.append(f"{len(orphans)} rated users have no users.csv row; kept with no features")
    if dup_pairs:
        report.notes.append(f"{dup_pairs} repeated (user_id, item_id) ratings kept as separate rows")
    return MovieLens(root=root, ratings=ratings, users=users, items=items, report=report)
