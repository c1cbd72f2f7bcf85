"""Feature fields of the ranker and their encoding into precomputed tensors.

A ``FeatureSpec`` lists the fields a model reads. ``FeatureSpec.fit(frame)`` learns vocabularies,
bucket edges and scales from the *training* rows only, so ids unseen in training (cold items, new users)
map to the unknown index 0. ``encode(frame)`` turns a frame into an ``EncodedBatch`` of numpy arrays that
the trainer slices into mini-batches without per-sample Python.

Field kinds:

- ``categorical``: a vocabulary (ids seen ``min_count`` times) or ``hash_buckets`` (stable hashing).
- ``numeric``: ``buckets`` > 0 turns it into a categorical field of quantile buckets; else standard scaling.
- ``tags``: multi-valued (a list or a ``|``-separated string), truncated to ``max_len``, mean-pooled.
- ``vector``: a pretrained vector looked up by a key column (``item_id`` for e_SEM, e_STY, e_TSEM;
  ``session_id`` for the affect context). ``freeze`` says whether training may change the vectors;
  ``standardize`` z-scores each dimension over the table (pretrained encoders differ in scale by 100x).
  The affect context's field carries its ``affect_schema`` (``aigcrec.data.affect_context``: the table's
  column names, in order, and their version), saved with the spec and checked against the table at ``fit``.
- context group: the ``categorical`` and ``numeric`` fields with ``group="context"`` (on the context side)
  are the explicit context of an impression (mood, purpose, time of day, ...; ``FeatureSpec.context``).
  Their missing values (a rating given without that context) are a token of their own (``missing_token``), not the
  unknown index; numeric ones are standard-scaled (missing -> 0, the training mean). UMAIR-FPS reads the
  group in the slot of the affect context (user tower and so UMCM's query, affect projection, match terms).
- ``history``: the user's earlier positive items (a list of item ids, most recent last, truncated to the
  last ``max_len``), encoded once per item-side modality table as rows of that table; the model reads
  the mean of those rows (``Ranker.history_profile``), the user's content profile. ``aigcrec.ranking.data.add_history``
  builds the column from the training rows only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from aigcrec.data.affect_context import AffectContextSchema

Side = Literal["user", "item", "context"]
Kind = Literal["categorical", "numeric", "tags", "vector", "history"]
HISTORY_SEP = ":"
MISSING_TOKEN = "<missing>"  # the vocabulary entry of a missing value in a ``missing_token`` field


def is_missing(v: Any) -> bool:
    """None, NaN / <NA> or an empty string."""
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def split_history_key(key: str) -> tuple[str, str]:
    """``"<history field>:<table>"`` -> (history field, table)."""
    field_name, table = key.split(HISTORY_SEP, 1)
    return field_name, table


@dataclass
class Field:
    """One input field. ``column`` defaults to ``name``; ``side`` says which tower reads it."""

    name: str
    kind: Kind
    side: Side
    column: str | None = None
    hash_buckets: int | None = None
    min_count: int = 1
    buckets: int = 0
    max_len: int = 8
    dim: int = 0
    key: str = "item_id"
    freeze: bool = True
    standardize: bool = True
    modality: bool = False
    id_dropout: bool = False
    missing_token: bool = False  # categorical: a missing value is the MISSING_TOKEN label, not unknown (index 0)
    group: str | None = None  # "context": one of the explicit context fields (``context_field``)
    affect_schema: dict[str, Any] | None = None  # vector: the table's AffectContextSchema.to_dict() (affect context)

    def __post_init__(self) -> None:
        if self.kind not in ("categorical", "numeric", "tags", "vector", "history"):
            raise ValueError(f"field '{self.name}': kind must be categorical/numeric/tags/vector/history, "
                             f"got {self.kind!r}")
        if self.side not in ("user", "item", "context"):
            raise ValueError(f"field '{self.name}': side must be user/item/context, got {self.side!r}")
        if self.column is None:
            self.column = self.name
        if self.group not in (None, "context"):
            raise ValueError(f"field '{self.name}': group must be None or 'context', got {self.group!r}")
        if self.affect_schema is not None and self.kind != "vector":
            raise ValueError(f"field '{self.name}': only a vector field has an affect_schema, got kind {self.kind!r}")
        if self.group == "context" and (self.side != "context" or self.kind not in ("categorical", "numeric")):
            raise ValueError(f"field '{self.name}': a context-group field is categorical or numeric on the context "
                             f"side, got kind {self.kind!r}, side {self.side!r}")

    @classmethod
    def context_field(cls, column: str, kind: Literal["categorical", "numeric"]) -> "Field":
        """An explicit context field: a categorical label (missing = its own token) or a scaled number."""
        return cls(column, kind, "context", group="context", missing_token=kind == "categorical")

    @property
    def is_sparse(self) -> bool:
        """Embedded through a vocabulary (categorical, bucketised numeric)."""
        return self.kind == "categorical" or (self.kind == "numeric" and self.buckets > 0)


@dataclass
class EncodedBatch:
    """Precomputed model inputs of N rows (numpy; the trainer turns them into tensors once).

    ``cat`` (N, F_cat) int64 indices per sparse field (0 = unknown); ``tags`` (N, F_tag, L) int64 (0 = pad);
    ``num`` (N, F_num) float32 scaled values; ``vec_idx`` name -> (N,) int64 row in the vector table
    (0 = missing, zeros), and ``"<history field>:<table>"`` -> (N, L) int64 rows of the user's earlier
    positive items in that table (0 = padding).
    """

    cat: np.ndarray
    tags: np.ndarray
    num: np.ndarray
    vec_idx: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.cat.shape[0])

    def take(self, rows: np.ndarray) -> "EncodedBatch":
        return EncodedBatch(self.cat[rows], self.tags[rows], self.num[rows], {k: v[rows] for k, v in self.vec_idx.items()})


def _stable_hash(value: str, buckets: int) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little") % buckets + 1


def _as_tag_lists(col: pd.Series) -> list[list[str]]:
    out = []
    for v in col.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append([])
        elif isinstance(v, str):
            out.append([t for t in v.split("|") if t])
        else:
            out.append([str(t) for t in v])
    return out


@dataclass
class FeatureSpec:
    """The fields a ranker reads, with what ``fit`` learned about them (vocabularies, scales)."""

    fields: list[Field]
    state: dict[str, Any] = field(default_factory=dict)
    _scales: dict[str, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"field names must be unique, got duplicates {dup}")

    # -- views -------------------------------------------------------------------------------------------
    def of(self, kind: str | None = None, side: str | None = None, sparse: bool | None = None) -> list[Field]:
        return [f for f in self.fields if (kind is None or f.kind == kind) and (side is None or f.side == side)
                and (sparse is None or f.is_sparse == sparse)]

    @property
    def sparse(self) -> list[Field]:
        return [f for f in self.fields if f.is_sparse]

    @property
    def dense(self) -> list[Field]:
        return [f for f in self.fields if f.kind == "numeric" and f.buckets == 0]

    @property
    def tags(self) -> list[Field]:
        return self.of(kind="tags")

    @property
    def vectors(self) -> list[Field]:
        return self.of(kind="vector")

    @property
    def history(self) -> list[Field]:
        return self.of(kind="history")

    @property
    def context(self) -> list[Field]:
        """The explicit context group (``group="context"``: categorical and numeric context fields)."""
        return [f for f in self.fields if f.group == "context"]

    def context_schema(self) -> dict[str, dict[str, Any]]:
        """Column -> {"kind", "values"} of the context group (categorical: the fitted labels; numeric: none),
        what a ranker bundle records and a request's explicit context is checked against."""
        out: dict[str, dict[str, Any]] = {}
        for f in self.context:
            vocab = self.state.get(f.name, {}).get("vocab")
            labels = sorted(v for v in vocab if v != MISSING_TOKEN) if vocab is not None else None
            out[f.column] = {"kind": "categorical" if f.kind == "categorical" else "numeric", "values": labels}
        return out

    @property
    def affect(self) -> Field | None:
        """The affect context's vector field (a non-modality vector field; None when the ranker reads none)."""
        return next((f for f in self.vectors if not f.modality), None)

    def affect_schema(self) -> AffectContextSchema | None:
        """The saved schema of the affect context (None without an affect field, or for a spec saved before
        schemas were recorded: ranker bundles of format 2 and earlier)."""
        f = self.affect
        if f is None or f.affect_schema is None:
            return None
        return AffectContextSchema.from_dict(f.affect_schema, f"feature spec field '{f.name}'")

    @property
    def history_len(self) -> int:
        """The most earlier positives a ``history`` field keeps (0 without one)."""
        return max((f.max_len for f in self.history), default=0)

    def history_keys(self, tables: list[str] | None = None) -> list[str]:
        """``"<history field>:<table>"`` for each modality table a history field is encoded against
        (restricted to ``tables`` when given)."""
        have = {f.name for f in self.vectors if f.modality}
        return [f"{h.name}{HISTORY_SEP}{t}" for h in self.history for t in self.state.get(h.name, {}).get("tables", [])
                if t in have and (tables is None or t in tables)]

    def tabular_only(self) -> "FeatureSpec":
        """A copy without vector and history fields: what the tabular baselines and the peers read."""
        return self.without({f.name for f in self.fields if f.kind in ("vector", "history")})

    def cardinality(self, f: Field) -> int:
        """Rows of the embedding table of a sparse or tags field (index 0 = unknown / padding)."""
        return int(self.state[f.name]["size"])

    def without(self, names: set[str]) -> "FeatureSpec":
        """A copy without the named fields (for ablations and tabular-only baselines)."""
        return FeatureSpec([f for f in self.fields if f.name not in names],
                           {k: v for k, v in self.state.items() if k not in names})

    # -- fitting and encoding ----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, vector_tables: dict[str, tuple[list[str], np.ndarray]]) -> "FeatureSpec":
        """Learn vocabularies / buckets / scales from training rows; index the vector tables."""
        self._check_columns(frame)
        for f in self.fields:
            col = frame[f.column] if f.kind != "vector" else None
            if f.kind == "categorical":
                if f.hash_buckets:
                    self.state[f.name] = {"size": f.hash_buckets + 1}
                else:
                    counts = self._labels(f, col).value_counts()
                    kept = sorted(counts[counts >= f.min_count].index.tolist())
                    self.state[f.name] = {"vocab": {v: i + 1 for i, v in enumerate(kept)}, "size": len(kept) + 1}
            elif f.kind == "numeric":
                x = pd.to_numeric(col, errors="coerce").astype(float)
                if f.buckets > 0:
                    edges = np.unique(np.nanquantile(x, np.linspace(0, 1, f.buckets + 1)[1:-1]))
                    self.state[f.name] = {"edges": edges.tolist(), "size": len(edges) + 2}
                else:
                    seen = x.to_numpy()[np.isfinite(x.to_numpy())]  # missing on every training row: scales to 0
                    mean, std = (float(np.mean(seen)), float(np.std(seen))) if len(seen) else (0.0, 1.0)
                    self.state[f.name] = {"mean": mean, "std": std if std > 0 else 1.0}
            elif f.kind == "tags":
                counts: dict[str, int] = {}
                for tags in _as_tag_lists(col):
                    for t in tags:
                        counts[t] = counts.get(t, 0) + 1
                kept = sorted(t for t, c in counts.items() if c >= f.min_count)
                self.state[f.name] = {"vocab": {v: i + 1 for i, v in enumerate(kept)}, "size": len(kept) + 1}
            elif f.kind == "history":
                self.state[f.name] = {"tables": [v.name for v in self.fields if v.kind == "vector" and v.modality]}
            else:
                if f.name not in vector_tables:
                    raise ValueError(f"vector field '{f.name}': no table given (have {sorted(vector_tables)})")
                keys, matrix = vector_tables[f.name]
                matrix = np.asarray(matrix, dtype=np.float32)
                if matrix.ndim != 2 or matrix.shape[0] != len(keys):
                    raise ValueError(f"vector field '{f.name}': expected a (n_keys, d) matrix for {len(keys)} keys, "
                                     f"got shape {matrix.shape}")
                f.dim = int(matrix.shape[1])
                columns = (f.affect_schema or {}).get("columns")
                if columns is not None and len(columns) != f.dim:
                    raise ValueError(f"vector field '{f.name}': its affect schema names {len(columns)} columns, "
                                     f"the table has {f.dim}")
                self.state[f.name] = {"keys": {str(k): i + 1 for i, k in enumerate(keys)}}
                if f.standardize:
                    std = matrix.std(axis=0)
                    self.state[f.name].update(mean=matrix.mean(axis=0).tolist(),
                                              std=np.where(std > 1e-8, std, 1.0).tolist())
        return self

    def vector_table(self, f: Field, vector_tables: dict[str, tuple[list[str], np.ndarray]]) -> np.ndarray:
        """(n_keys + 1, d) float32 table (standardized if asked) with a zero row 0 for missing keys."""
        _, matrix = vector_tables[f.name]
        return np.vstack([np.zeros((1, f.dim), np.float32), self.prepare_vectors(f, matrix)])

    def prepare_vectors(self, f: Field, matrix: np.ndarray) -> np.ndarray:
        """Raw vectors (n, d) of field ``f`` as the model sees them (standardized with the fitted scale)."""
        x = np.asarray(matrix, np.float32)
        if x.ndim != 2 or x.shape[1] != f.dim:
            raise ValueError(f"vector field '{f.name}': expected shape (n, {f.dim}), got {x.shape}")
        st = self.state[f.name]
        if "mean" in st:
            mean, std = self._scale(f.name, st)
            x = (x - mean) / std
        return x.astype(np.float32)

    def _scale(self, name: str, st: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) arrays of a standardized vector field, converted from the state's lists once (the
        serving path calls ``prepare_vectors`` on every request); a refit replaces the lists and the cache."""
        cached = self._scales.get(name)
        if cached is None or cached[0] is not st["mean"]:
            cached = (st["mean"], np.asarray(st["mean"], np.float32), np.asarray(st["std"], np.float32))
            self._scales[name] = cached
        return cached[1], cached[2]

    def encode(self, frame: pd.DataFrame) -> EncodedBatch:
        """Rows of ``frame`` to model inputs (unknown values -> index 0)."""
        self._check_columns(frame)
        n = len(frame)
        cat = np.zeros((n, len(self.sparse)), np.int64)
        for j, f in enumerate(self.sparse):
            cat[:, j] = self._encode_sparse(f, frame[f.column])
        max_len = max((f.max_len for f in self.tags), default=1)
        tags = np.zeros((n, len(self.tags), max_len), np.int64)
        for j, f in enumerate(self.tags):
            vocab = self.state[f.name]["vocab"]
            for i, row in enumerate(_as_tag_lists(frame[f.column])):
                ids = [vocab[t] for t in row if t in vocab][: f.max_len]
                tags[i, j, : len(ids)] = ids
        num = np.zeros((n, len(self.dense)), np.float32)
        for j, f in enumerate(self.dense):
            st = self.state[f.name]
            x = pd.to_numeric(frame[f.column], errors="coerce").astype(float).to_numpy()
            num[:, j] = np.nan_to_num((x - st["mean"]) / st["std"])
        vec_idx = {}
        for f in self.vectors:
            keys = self.state[f.name]["keys"]
            vec_idx[f.name] = frame[f.key].astype(str).map(keys).fillna(0).to_numpy(np.int64)
        history = {f.name: f for f in self.history}
        for key in self.history_keys():
            name, table = split_history_key(key)
            vec_idx[key] = self._encode_history(history[name], frame, self.state[table]["keys"])
        return EncodedBatch(cat, tags, num, vec_idx)

    @staticmethod
    def _encode_history(f: Field, frame: pd.DataFrame, keys: dict[str, int]) -> np.ndarray:
        """(N, max_len) rows of the most recent ``max_len`` history items in a table (0 = padding / unknown)."""
        out = np.zeros((len(frame), f.max_len), np.int64)
        for i, row in enumerate(_as_tag_lists(frame[f.column])):
            ids = [keys.get(t, 0) for t in row[-f.max_len:]]
            out[i, : len(ids)] = ids
        return out

    def _encode_sparse(self, f: Field, col: pd.Series) -> np.ndarray:
        st = self.state[f.name]
        if f.kind == "numeric":
            x = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
            idx = np.searchsorted(np.asarray(st["edges"]), x, side="right") + 1
            return np.where(np.isnan(x), 0, idx).astype(np.int64)
        if f.hash_buckets:
            return np.array([0 if pd.isna(v) else _stable_hash(str(v), f.hash_buckets) for v in col], np.int64)
        return self._labels(f, col).map(st["vocab"]).fillna(0).to_numpy(np.int64)

    @staticmethod
    def _labels(f: Field, col: pd.Series) -> pd.Series:
        """The strings a vocabulary maps (a ``missing_token`` field's missing values as MISSING_TOKEN)."""
        if not f.missing_token:
            return col.astype(str)
        return pd.Series([MISSING_TOKEN if is_missing(v) else str(v) for v in col], index=col.index, dtype=object)

    def _check_columns(self, frame: pd.DataFrame) -> None:
        needed = {f.key if f.kind == "vector" else f.column for f in self.fields}
        missing = sorted(needed - set(frame.columns))
        if missing:
            raise ValueError(f"frame is missing columns {missing} needed by the feature spec "
                             f"(got columns {sorted(frame.columns)})")

    # -- persistence -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"fields": [vars(f).copy() for f in self.fields], "state": self.state}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSpec":
        return cls([Field(**f) for f in data["fields"]], data["state"])
