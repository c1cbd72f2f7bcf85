"""The world folder layout: ``load_world`` reads and validates a world directory into a ``World`` of pandas
frames; ``world_report`` summarises it for ``aigcrec data validate --format world``.

The layout is data like any other dataset's, so it lives with the loaders; ``aigcrec.world`` generates it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aigcrec.data.checks import require_dir, value_counts
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport
from aigcrec.data.schemas import EMOTIONS, INTENTS, PALETTES, STYLES, SUBJECTS


@dataclass
class World:
    """A loaded world. Paths in the frames are absolute; ``truth`` is truth.json (the generative parameters)."""

    root: Path
    items: pd.DataFrame          # item_id, title, title_ja, title_zh, tags, creator_id, series_id, image_path, ...
    users: pd.DataFrame          # user_id, age_group, country, gender, lang, follows, taste_type
    interactions: pd.DataFrame   # user_id, item_id, label, timestamp, session_id, emotion, intent, position
    sessions: pd.DataFrame       # session_id, user_id, timestamp, emotion, intent, text, face_path, voice_path, split
    text_pairs: pd.DataFrame     # anchor, positive, kind, langs, split
    truth: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    creators: pd.DataFrame | None = None
    series: pd.DataFrame | None = None
    signal_truth: pd.DataFrame | None = None   # what each affect modality displays (ground truth, not a feature)

    def __repr__(self) -> str:
        return (f"World({self.root}, items={len(self.items)}, users={len(self.users)}, "
                f"sessions={len(self.sessions)}, impressions={len(self.interactions)})")


def _read(root: Path, rel: str, columns: list[str], dtypes: dict[str, Any] | None = None) -> pd.DataFrame:
    path = root / rel
    if not path.is_file():
        raise DataError(rel, "file missing")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(rel, f"not a readable CSV ({exc})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(rel, "missing column", field=missing[0], expected=f"columns {columns}",
                        got=list(df.columns))
    return df


def _check(df: pd.DataFrame, rel: str, col: str, ok: Callable[[pd.Series], np.ndarray], expected: str) -> None:
    bad = ~ok(df[col])
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(rel, "bad value", row=r + 1, field=col, expected=expected, got=df[col].iat[r])


def _id(pattern: str) -> Callable[[pd.Series], np.ndarray]:
    rx = re.compile(pattern)
    return lambda s: s.map(lambda v: bool(rx.fullmatch(v))).to_numpy()


def _in(values) -> Callable[[pd.Series], np.ndarray]:
    allowed = set(values)
    return lambda s: s.isin(allowed).to_numpy()


def _number(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").notna().to_numpy()


def _unique(df: pd.DataFrame, rel: str, col: str) -> None:
    dup = df[col].duplicated()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        raise DataError(rel, "duplicate id", row=r + 1, field=col, expected="unique ids", got=df[col].iat[r])


def _tags(s: pd.Series) -> np.ndarray:
    def ok(v: str) -> bool:
        try:
            t = json.loads(v)
        except json.JSONDecodeError:
            return False
        return isinstance(t, list) and all(isinstance(x, dict) and x.get("text") and x.get("lang") for x in t)
    return s.map(ok).to_numpy()


def _exists(root: Path) -> Callable[[pd.Series], np.ndarray]:
    return lambda s: s.map(lambda v: bool(v) and (root / v).is_file()).to_numpy()


def world_identity(root: str | Path) -> str:
    """The folder and its manifest's ``config_digest``: what keys caches of things derived from a world, so a
    world regenerated in the same folder with other knobs or another version is not mistaken for the old one."""
    root = Path(root).resolve()
    try:
        digest = json.loads((root / "world.json").read_text(encoding="utf-8")).get("config_digest", "")
    except (OSError, ValueError):
        digest = ""
    return f"{root}@{digest}"


def load_world(root: str | Path, check_files: bool = True) -> World:
    """Load the world at ``root``; raise ``DataError`` naming file, row and field on bad input.

    ``check_files`` also checks that every image, face and voice file exists.
    """
    root = Path(root).resolve()
    if not (root / "world.json").is_file():
        raise DataError("world.json", f"no world manifest in {root} (generate one with `aigcrec world --out DIR`)")
    try:
        manifest = json.loads((root / "world.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError("world.json", f"not valid JSON ({exc})") from None

    rel = "items.csv"
    items = _read(root, rel, ["item_id", "title", "title_ja", "title_zh", "tags", "creator_id", "series_id", "image",
                              "created_at", "subject", "style", "palette"])
    _check(items, rel, "item_id", _id(r"i\d{6}"), "an id like 'i000001'")
    _unique(items, rel, "item_id")
    _check(items, rel, "tags", _tags, 'a JSON list of {"text", "lang"} objects')
    _check(items, rel, "created_at", _number, "unix seconds")
    _check(items, rel, "subject", _in(SUBJECTS), f"one of {SUBJECTS}")
    _check(items, rel, "style", _in(STYLES), f"one of {STYLES}")
    _check(items, rel, "palette", _in(PALETTES), f"one of {PALETTES}")
    if check_files:
        _check(items, rel, "image", _exists(root), "an existing image file relative to the world folder")
    items["tags"] = items["tags"].map(json.loads)
    items["created_at"] = items["created_at"].astype(float)
    items.insert(items.columns.get_loc("image"), "image_path", [str(root / p) for p in items["image"]])
    items = items.drop(columns=["image"])

    rel = "users.csv"
    users = _read(root, rel, ["user_id", "taste_type"])
    _check(users, rel, "user_id", _id(r"u\d{4,}"), "an id like 'u0001'")
    _unique(users, rel, "user_id")
    _check(users, rel, "taste_type", _in(("style", "subject", "mixed", "mood")), "style, subject, mixed or mood")
    users = users.replace({"": None})
    if "follows" in users:
        users["follows"] = users["follows"].map(lambda v: json.loads(v) if v else [])

    rel = "affect/utterances.csv"
    sessions = _read(root, rel, ["session_id", "user_id", "timestamp", "emotion", "intent", "text", "face", "voice",
                                 "split"])
    _unique(sessions, rel, "session_id")
    _check(sessions, rel, "user_id", _in(users["user_id"]), "a user_id of users.csv")
    _check(sessions, rel, "timestamp", _number, "unix seconds")
    _check(sessions, rel, "emotion", _in(EMOTIONS), f"one of {EMOTIONS}")
    _check(sessions, rel, "intent", _in(INTENTS), f"one of {INTENTS}")
    _check(sessions, rel, "split", _in(("train", "dev", "test")), "train, dev or test")
    if check_files:
        _check(sessions, rel, "face", _exists(root), "an existing face image relative to the world folder")
        _check(sessions, rel, "voice", _exists(root), "an existing WAV file relative to the world folder")
    sessions["timestamp"] = sessions["timestamp"].astype(float)
    sessions["face_path"] = [str(root / p) for p in sessions.pop("face")]
    sessions["voice_path"] = [str(root / p) for p in sessions.pop("voice")]
    sessions = sessions[["session_id", "user_id", "timestamp", "emotion", "intent", "text", "face_path",
                         "voice_path", "split"]]

    rel = "interactions.csv"
    inter = _read(root, rel, ["user_id", "item_id", "label", "timestamp", "session_id"])
    _check(inter, rel, "user_id", _in(users["user_id"]), "a user_id of users.csv")
    _check(inter, rel, "item_id", _in(items["item_id"]), "an item_id of items.csv")
    _check(inter, rel, "label", _in(("0", "1")), "0 or 1")
    _check(inter, rel, "timestamp", _number, "unix seconds")
    _check(inter, rel, "session_id", _in(sessions["session_id"]), "a session_id of affect/utterances.csv")
    inter["label"] = inter["label"].astype(int)
    inter["timestamp"] = inter["timestamp"].astype(float)
    if "position" in inter:
        inter["position"] = inter["position"].astype(int)
    ts = inter["timestamp"].to_numpy()
    if len(ts) > 1 and (np.diff(ts) < 0).any():
        r = int(np.flatnonzero(np.diff(ts) < 0)[0]) + 1
        raise DataError(rel, "not sorted by time", row=r + 1, field="timestamp",
                        expected="timestamps in increasing order", got=inter["timestamp"].iat[r])

    rel = "text_pairs.csv"
    pairs = _read(root, rel, ["anchor", "positive", "kind", "langs", "split"])
    _check(pairs, rel, "kind", _in(("multilingual", "entity", "term")), "multilingual, entity or term")
    _check(pairs, rel, "split", _in(("train", "test")), "train or test")

    rel = "truth.json"
    try:
        truth = json.loads((root / rel).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(rel, "file missing") from None
    except json.JSONDecodeError as exc:
        raise DataError(rel, f"not valid JSON ({exc})") from None

    def optional(name: str) -> pd.DataFrame | None:
        p = root / name
        return pd.read_csv(p, dtype={"creator_id": str, "series_id": str, "session_id": str},
                           keep_default_na=False) if p.is_file() else None

    return World(root=root, items=items, users=users, interactions=inter, sessions=sessions, text_pairs=pairs,
                 truth=truth, manifest=manifest, creators=optional("creators.csv"), series=optional("series.csv"),
                 signal_truth=optional("affect/signal_truth.csv"))


def world_report(root: str | Path, check_files: bool = True) -> DatasetReport:
    """Load the world at ``root`` (raising :class:`DataError` on bad input) and summarise it."""
    world = load_world(require_dir(root), check_files=check_files)
    items, users, inter, sessions = world.items, world.users, world.interactions, world.sessions
    tags = [t for ts in items["tags"] for t in ts]
    return DatasetReport(
        format="world",
        root=str(world.root),
        counts={
            "items": len(items),
            "users": len(users),
            "creators": int(items["creator_id"].nunique()),
            "sessions": len(sessions),
            "impressions": len(inter),
            "text_pairs": len(world.text_pairs),
            "tags": len(tags),
        },
        distributions={
            "impressions.label": value_counts(inter["label"]),
            "sessions.emotion": value_counts(sessions["emotion"]),
            "sessions.intent": value_counts(sessions["intent"]),
            "sessions.split": value_counts(sessions["split"]),
            "items.style": value_counts(items["style"]),
            "items.subject": value_counts(items["subject"]),
            "tag_language": value_counts(t["lang"] for t in tags),
            "text_pairs.kind": value_counts(world.text_pairs["kind"]),
        },
        missing={
            "items.tags": int(items["tags"].map(len).eq(0).sum()),
            "items.series_id": int(items["series_id"].eq("").sum()),
            **{f"users.{c}": int(users[c].isna().sum()) for c in users.columns if c != "user_id"},
        },
    )
