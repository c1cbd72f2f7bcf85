"""The affect-context contract between the affect stage, the ranker and the service.

An ``AffectContextSchema`` names the columns of an affect-context table (one row per session or request),
in order, with a version of the naming rules below. It is used when a training frame is written
(``aigcrec.affect.predictor.states_frame``, ``aigcrec.ranking.data.session_oracle_affect``, the served
log's contexts), saved in the ranker bundle (on the affect vector field of its feature spec), and checked by
name at start-up against the affect model the service loads (``check_servable``); ``encode`` turns one
affect state into a row in the schema's order. Every column is defined by its name, never by the width:

- ``emotion_p_<e>`` / ``intent_p_<i>``: the calibrated probability of emotion ``e`` / intent ``i``;
- ``emb_<j>``: coordinate ``j`` of the affect model's fused embedding;
- ``confidence``: the probability of the predicted emotion;
- ``uses_<m>``: 1 when signal ``m`` (text, voice, face) was given and usable, else 0;
- ``emotion_<e>`` / ``intent_<i>``: the world's session state one-hot (``session_state``). Served from an
  affect model, such a column is that label's probability: the expected value of the one-hot under the
  model's reading (the one documented rule that maps one family onto another).

Named layouts: ``mmei_state`` (every column of an MMEI reading, what the demo's ``affect_context.parquet``
holds), ``served_state`` (what the service's event log keeps: probabilities, confidence and signal flags,
never the embedding) and ``session_state`` (the world's one-hot oracle). Any other set of columns is
``custom``: it trains, and serves only if every column name follows the rules above.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aigcrec.data.schemas import EMOTIONS

AFFECT_CONTEXT_VERSION = 1
"""Version of the column naming rules; a schema saved by a later version is refused."""
SIGNALS: tuple[str, ...] = ("text", "voice", "face")
"""The user signals an affect model reads, in the order of the ``uses_<m>`` columns."""
PARQUET_KEY = b"aigcrec.affect_context"
"""Parquet metadata key under which ``write_affect_context`` records the schema."""

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("emotion_p", re.compile(r"^emotion_p_(.+)$")),
    ("intent_p", re.compile(r"^intent_p_(.+)$")),
    ("emb", re.compile(r"^emb_(\d+)$")),
    ("confidence", re.compile(r"^confidence$")),
    ("uses", re.compile(r"^uses_(text|voice|face)$")),
    ("emotion_onehot", re.compile(r"^emotion_(.+)$")),
    ("intent_onehot", re.compile(r"^intent_(.+)$")),
)
_GROUPS = {"emotion_p": "emotion", "emotion_onehot": "emotion", "intent_p": "intent", "intent_onehot": "intent",
           "emb": "emb"}


def parse_column(column: str) -> tuple[str, str] | None:
    """(family, label) of a column name under the naming rules, or None when it follows none of them."""
    for family, pattern in _PATTERNS:
        m = pattern.match(column)
        if m:
            return family, m.group(1) if m.groups() else ""
    return None


class AffectContextMismatch(ValueError):
    """A ranker's affect context cannot be computed from the affect model beside it (the columns that differ)."""


def _span(labels: Sequence[str], limit: int = 8) -> str:
    labels = list(labels)
    return ", ".join(labels[:limit]) + (f", ... ({len(labels)} in all)" if len(labels) > limit else "")


@dataclass(frozen=True)
class AffectContextSchema:
    """Column names (in order), the layout's name and the version of the naming rules."""

    name: str
    columns: tuple[str, ...]
    version: int = AFFECT_CONTEXT_VERSION

    def __post_init__(self) -> None:
        if not self.columns:
            raise ValueError(f"affect context schema {self.name!r}: expected at least one column")
        dup = sorted({c for c in self.columns if list(self.columns).count(c) > 1})
        if dup:
            raise ValueError(f"affect context schema {self.name!r}: duplicate columns {dup}")
        if self.version > AFFECT_CONTEXT_VERSION:
            raise ValueError(f"affect context schema {self.name!r} has version {self.version}; this aigcrec knows "
                             f"up to {AFFECT_CONTEXT_VERSION} (saved by a newer version? upgrade aigcrec)")

    @property
    def dim(self) -> int:
        return len(self.columns)

    # -- the named layouts ----------------------------------------------------------------------------
    @classmethod
    def mmei_state(cls, intents: Sequence[str], embedding_dim: int) -> "AffectContextSchema":
        """Every column of an MMEI reading: 7 emotion and K intent probabilities, the D-d fused embedding,
        the confidence and one flag per signal (``states_frame``'s columns)."""
        if embedding_dim < 1:
            raise ValueError(f"mmei_state: expected an embedding of at least 1 value, got {embedding_dim}")
        return cls("mmei_state", (*[f"emotion_p_{e}" for e in EMOTIONS], *[f"intent_p_{i}" for i in intents],
                                  *[f"emb_{j}" for j in range(int(embedding_dim))], "confidence",
                                  *[f"uses_{m}" for m in SIGNALS]))

    @classmethod
    def served_state(cls, intents: Sequence[str]) -> "AffectContextSchema":
        """What the service logs of a served reading: probabilities, confidence, signal flags (no embedding)."""
        return cls("served_state", (*[f"emotion_p_{e}" for e in EMOTIONS], *[f"intent_p_{i}" for i in intents],
                                    "confidence", *[f"uses_{m}" for m in SIGNALS]))

    @classmethod
    def session_state(cls, intents: Sequence[str]) -> "AffectContextSchema":
        """The world's simulated session state: one-hot emotion (EMOTIONS order) and intent."""
        return cls("session_state", (*[f"emotion_{e}" for e in EMOTIONS], *[f"intent_{i}" for i in intents]))

    @classmethod
    def from_columns(cls, columns: Sequence[str]) -> "AffectContextSchema":
        """The schema of a table with these columns: a named layout when they are exactly one, else ``custom``."""
        cols = tuple(str(c) for c in columns)
        intents = [lab for fam, lab in filter(None, map(parse_column, cols)) if fam in ("intent_p", "intent_onehot")]
        embedding = sum(1 for c in cols if parse_column(c) and parse_column(c)[0] == "emb")
        layouts = [cls.served_state(intents), cls.session_state(intents)]
        if embedding:
            layouts.insert(0, cls.mmei_state(intents, embedding))
        for layout in layouts:
            if layout.columns == cols:
                return layout
        return cls("custom", cols)

    # -- persistence --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "affect context schema") -> "AffectContextSchema":
        missing = [k for k in ("name", "version", "columns") if k not in data]
        if missing:
            raise ValueError(f"{source}: expected keys name, version, columns; missing {missing}")
        return cls(str(data["name"]), tuple(str(c) for c in data["columns"]), int(data["version"]))

    # -- checks ---------------------------------------------------------------------------------------
    def check_frame(self, frame: pd.DataFrame, source: str) -> pd.DataFrame:
        """``frame``'s columns are exactly this schema's (any order: returned in the schema's order)."""
        have = [str(c) for c in frame.columns]
        missing = [c for c in self.columns if c not in have]
        extra = [c for c in have if c not in self.columns]
        if missing or extra:
            raise AffectContextMismatch(f"{source}: columns differ from the affect context schema {self.name!r}: "
                                        f"missing [{_span(missing)}], unexpected [{_span(extra)}]")
        return frame[list(self.columns)]

    def check_servable(self, offered: "AffectContextSchema", what: str = "the ranker") -> None:
        """Every column of this schema (a ranker's) can be computed by name from an affect model whose full
        reading is ``offered`` (e.g. its ``mmei_state``); a group read at all (emotion labels, intent labels,
        embedding coordinates) must be the model's whole group. Raises ``AffectContextMismatch`` naming the
        columns that differ."""
        have = {c: parse_column(c) for c in offered.columns}
        groups: dict[str, set[str]] = {}
        for fam, lab in filter(None, have.values()):
            groups.setdefault(_GROUPS.get(fam, fam), set()).add(lab)
        unknown, missing, read = [], [], {}
        for c in self.columns:
            parsed = parse_column(c)
            if parsed is None:
                unknown.append(c)
                continue
            fam, lab = parsed
            group = _GROUPS.get(fam, fam)
            read.setdefault(group, set()).add(lab)
            if lab not in groups.get(group, set()):
                missing.append(c)
        problems = []
        if unknown:
            problems.append(f"columns no affect model computes (not named by the rules of "
                            f"aigcrec.data.affect_context): [{_span(unknown)}]")
        if missing:
            problems.append(f"columns the affect model does not give: [{_span(missing)}]")
        for group in ("emotion", "intent", "emb"):
            mine, theirs = read.get(group, set()), groups.get(group, set())
            if mine and theirs and mine != theirs and not missing:
                problems.append(f"{group} labels differ: {what} reads [{_span(sorted(mine))}], the affect model "
                                f"gives [{_span(sorted(theirs))}]")
        if problems:
            raise AffectContextMismatch(
                f"{what}'s affect context ({self.name}, {self.dim} columns) cannot be computed from the affect "
                f"model ({offered.name}, {offered.dim} columns): " + "; ".join(problems)
                + ". Retrain the ranker on this affect model's context, or serve the affect model it was "
                  "trained with")

    # -- encoding -------------------------------------------------------------------------------------
    def encode(self, state: Any) -> np.ndarray:
        """One affect state (an ``AffectState``: emotion_probs, intent_probs, embedding, confidence,
        modalities_used) as a float32 row (dim,) in this schema's column order."""
        emo, intent = _as_probs(state.emotion_probs, EMOTIONS), _as_probs(state.intent_probs, None)
        emb = getattr(state, "embedding", None)
        used = set(state.modalities_used or [])
        row = np.empty(self.dim, np.float32)
        for j, c in enumerate(self.columns):
            parsed = parse_column(c)
            if parsed is None:
                raise AffectContextMismatch(f"affect context column {c!r} is not computable from an affect state")
            fam, lab = parsed
            if fam in ("emotion_p", "emotion_onehot", "intent_p", "intent_onehot"):
                probs = emo if fam.startswith("emotion") else intent
                if lab not in probs:
                    raise AffectContextMismatch(f"affect context column {c!r}: the affect state has no "
                                                f"{fam.split('_')[0]} {lab!r} (has {sorted(probs)})")
                row[j] = probs[lab]
            elif fam == "emb":
                k = int(lab)
                if emb is None or k >= len(emb):
                    raise AffectContextMismatch(f"affect context column {c!r}: the affect state's embedding has "
                                                f"{0 if emb is None else len(emb)} values")
                row[j] = float(emb[k])
            elif fam == "confidence":
                row[j] = float(state.confidence)
            else:
                row[j] = float(lab in used)
        return row

    def frame(self, ids: Sequence[str], states: Sequence[Any], index: str = "session_id") -> pd.DataFrame:
        """Float32 table of ``states`` (one row each, indexed by ``ids``) in this schema's columns."""
        rows = np.stack([self.encode(s) for s in states]) if len(states) else np.zeros((0, self.dim), np.float32)
        return pd.DataFrame(rows, index=pd.Index([str(i) for i in ids], name=index), columns=list(self.columns))


def _as_probs(probs: Any, labels: Sequence[str] | None) -> dict[str, float]:
    """{label: p} from a mapping, or from a vector in ``labels`` order."""
    if hasattr(probs, "items"):
        return {str(k): float(v) for k, v in probs.items()}
    values = np.asarray(probs, dtype=float).reshape(-1)
    names = list(labels) if labels is not None else [str(i) for i in range(len(values))]
    return {str(n): float(v) for n, v in zip(names, values)}


def write_affect_context(frame: pd.DataFrame, schema: AffectContextSchema, path: str | Path) -> Path:
    """Write an affect-context table (index session_id) to Parquet with its schema in the file's metadata."""

    frame = schema.check_frame(frame, str(path))
    table = pa.Table.from_pandas(frame)
    meta = dict(table.schema.metadata or {})
    meta[PARQUET_KEY] = json.dumps(schema.to_dict()).encode("utf-8")
    path = Path(path)
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def read_affect_context(path: str | Path) -> tuple[pd.DataFrame, AffectContextSchema]:
    """An affect-context table (one row per session, numeric columns) from Parquet or CSV, with its schema:
    the one recorded by ``write_affect_context`` (checked against the columns), else ``from_columns``."""
    p = Path(path)
    recorded = None
    if p.suffix == ".parquet":
        raw = (pq.read_schema(p).metadata or {}).get(PARQUET_KEY)
        recorded = None if raw is None else AffectContextSchema.from_dict(json.loads(raw), f"{p} metadata")
        frame = pd.read_parquet(p)
    else:
        frame = pd.read_csv(p)
    if "session_id" in frame.columns:
        frame = frame.set_index("session_id")
    frame.index = frame.index.astype(str)
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{p}: affect context columns must be numeric, got non-numeric {bad}")
    schema = recorded or AffectContextSchema.from_columns(frame.columns)
    return schema.check_frame(frame, str(p)), schema
