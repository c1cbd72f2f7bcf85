"""Ranking datasets (one frame of impressions + fields + vector tables) and the two split protocols.

- ``warm_split``: per-user temporal 80/10/10 (each user's impressions sorted by time).
- ``cold_item_split``: a fixed ``fraction`` of items (seeded) and *all* their impressions are the test
  set; the other impressions are split per user 90/10 in time into train and validation.

``movielens_dataset``, ``world_dataset`` and ``catalog_dataset`` build a ``RankingData`` from a
MovieLens-with-posters folder, a generated world or a catalog folder (items.csv + images +
interactions.csv, ``aigcrec.data.layouts``), ``context_dataset`` from a context-aware rating folder (its
context columns as the explicit context group); content vectors come in as ``{name: (item_ids, matrix)}``.
Context-aware rating sets have no timestamps, so they are split at random per seed (``random_split``) or by
user (``cold_user_split``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aigcrec.data.affect_context import AffectContextSchema
from aigcrec.data.schemas import EMOTIONS
from aigcrec.data.world import load_world
from aigcrec.ranking.config import ModelConfig
from aigcrec.ranking.features import Field
from aigcrec.data.catalog import read_catalog
from aigcrec.data.context import load_context
from aigcrec.data.layouts import load_interactions
from aigcrec.data.movielens import load_movielens

VectorTables = dict[str, tuple[list[str], np.ndarray]]
MODALITIES = ("e_sem", "e_sty", "e_tsem")


def history_field(max_len: int = ModelConfig().history_len) -> Field:
    """The user-side ``history`` field: the user's earlier positive items (``add_history`` fills it; the
    length a model reads is ``ModelConfig.history_len``, set by ``experiment.prepare``)."""
    return Field("history", "history", "user", max_len=max_len)


def _positives_by_user(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Per user: the timestamps and item ids of the positive rows of ``frame``, in time order."""
    pos = frame[frame["label"] == 1].sort_values("timestamp", kind="stable")
    times, items = {}, {}
    for user, group in pos.groupby(pos["user_id"].astype(str), sort=False):
        times[user] = group["timestamp"].to_numpy(np.float64)
        items[user] = group["item_id"].astype(str).tolist()
    return times, items


def add_history(frame: pd.DataFrame, train_rows: np.ndarray, max_len: int,
                column: str = "history") -> pd.DataFrame:
    """A copy of ``frame`` with ``column``: per row, the user's positive items among the *training* rows
    with a timestamp strictly before the row's (most recent last, at most ``max_len``).

    Only training labels are read, so validation and test rows see the user's history as of the end of
    training, and a training row never sees its own label (nor any label of the same second).
    """
    times, items = _positives_by_user(frame.iloc[np.asarray(train_rows, dtype=np.int64)])
    users = frame["user_id"].astype(str).to_numpy()
    stamps = pd.to_numeric(frame["timestamp"]).to_numpy(np.float64)
    history: list[list[str]] = []
    for user, t in zip(users, stamps):
        seen = times.get(user)
        k = 0 if seen is None else int(np.searchsorted(seen, t, side="left"))
        history.append(items[user][max(0, k - max_len):k] if k else [])
    return frame.assign(**{column: history})


def latest_histories(frame: pd.DataFrame, max_len: int) -> dict[str, list[str]]:
    """Per user: the last ``max_len`` positive items of ``frame`` (the history a model serves with)."""
    _, items = _positives_by_user(frame)
    return {user: ids[-max_len:] for user, ids in items.items()}


@dataclass
class RankingData:
    """Impressions with every raw field joined in, the (unfitted) fields, and the vector tables.

    ``frame`` has user_id, item_id, label (0/1), timestamp and one column per field; ``session_id`` when
    sessions exist. ``tabular`` names the fields every model (and the peers) reads.
    """

    name: str
    frame: pd.DataFrame
    fields: list[Field]
    vectors: VectorTables = field(default_factory=dict)
    users: pd.DataFrame | None = None

    @property
    def tabular(self) -> list[Field]:
        return [f for f in self.fields if f.kind not in ("vector", "history")]

    def fingerprint(self) -> str:
        """A short hash of the impressions, their joined fields and the vector tables (not the field specs)."""
        h = hashlib.sha256(self.frame.to_csv(index=False).encode("utf-8"))
        for name in sorted(self.vectors):
            ids, matrix = self.vectors[name]
            h.update(name.encode() + "\0".join(ids).encode("utf-8"))
            h.update(np.ascontiguousarray(matrix).tobytes())
        return h.hexdigest()[:16]

    def validate(self) -> None:
        need = {"user_id", "item_id", "label", "timestamp"}
        missing = sorted(need - set(self.frame.columns))
        if missing:
            raise ValueError(f"{self.name}: impressions lack columns {missing} (got {sorted(self.frame.columns)})")
        bad = ~self.frame["label"].isin([0, 1])
        if bad.any():
            raise ValueError(f"{self.name}: label must be 0/1, got {self.frame['label'][bad].iloc[0]!r}")


def _temporal_rank(frame: pd.DataFrame, by: str = "user_id") -> np.ndarray:
    """Position of each row in its group's time order, as a fraction in [0, 1)."""
    order = frame.sort_values([by, "timestamp"], kind="stable")
    pos = order.groupby(by, sort=False).cumcount().to_numpy()
    size = order.groupby(by, sort=False)["timestamp"].transform("size").to_numpy()
    frac = np.empty(len(frame))
    frac[frame.index.get_indexer(order.index)] = pos / size
    return frac


def warm_split(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row positions of train / val / test: per-user temporal 80/10/10."""
    frac = _temporal_rank(frame.reset_index(drop=True))
    return {"train": np.flatnonzero(frac < 0.8), "val": np.flatnonzero((frac >= 0.8) & (frac < 0.9)),
            "test": np.flatnonzero(frac >= 0.9)}


def cold_item_split(frame: pd.DataFrame, fraction: float = 0.1, seed: int = 0) -> dict[str, np.ndarray]:
    """Row positions: test = every impression of a seeded ``fraction`` of items; train/val = 90/10 in time."""
    frame = frame.reset_index(drop=True)
    items = np.array(sorted(frame["item_id"].astype(str).unique()))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(items, size=max(1, int(round(fraction * len(items)))), replace=False).tolist())
    is_cold = frame["item_id"].astype(str).isin(cold).to_numpy()
    warm = frame[~is_cold]
    frac = _temporal_rank(warm)
    warm_pos = np.flatnonzero(~is_cold)
    return {"train": warm_pos[frac < 0.9], "val": warm_pos[frac >= 0.9], "test": np.flatnonzero(is_cold),
            "cold_items": np.array(sorted(cold))}


def random_split(frame: pd.DataFrame, seed: int, val: float = 0.1, test: float = 0.1) -> dict[str, np.ndarray]:
    """Row positions: a seeded random hold-out of ratings, (1 - val - test) / val / test."""
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test, n_val = int(round(test * len(frame))), int(round(val * len(frame)))
    return {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


def cold_user_split(frame: pd.DataFrame, seed: int, fraction: float = 0.2, val: float = 0.1) -> dict[str, np.ndarray]:
    """Row positions: test = every rating of a seeded ``fraction`` of users; the rest at random train / val."""
    users = np.array(sorted(frame["user_id"].astype(str).unique()))
    rng = np.random.default_rng(seed)
    cold = set(rng.choice(users, size=max(1, int(round(fraction * len(users)))), replace=False).tolist())
    is_cold = frame["user_id"].astype(str).isin(cold).to_numpy()
    rest = rng.permutation(np.flatnonzero(~is_cold))
    n_val = int(round(val * len(rest)))
    return {"train": np.sort(rest[n_val:]), "val": np.sort(rest[:n_val]), "test": np.flatnonzero(is_cold)}


def context_dataset(root: str | Path, context: str | list[str] = "all", vectors: VectorTables | None = None,
                    threshold: float | None = None) -> RankingData:
    """A context-aware rating folder -> impressions (label = rating >= ``threshold``; the ``rating`` column
    kept for rating prediction) with user, item and explicit context fields.

    ``context``: ``"all"`` or the context columns to use (``[]``: none). ``threshold``: default 4 on a 1-5
    scale, the scale's midpoint otherwise. Fields: user_id and every users.csv attribute (user side);
    item_id, the first genre when any item has genres, every metadata column of items.csv (item side); each
    chosen context column as ``Field.context_field`` (categorical with a missing token, or a scaled number);
    one modality field per content vector table given (text only: these sets have no images). No history
    field: without timestamps "earlier" positives are undefined.
    """

    cr = load_context(root)
    known = cr.context_columns
    cols = list(known) if context == "all" else list(context)
    unknown = [c for c in cols if c not in known]
    if unknown:
        raise ValueError(f"context: unknown column(s) {unknown}; {cr.schema.name} has {known}")
    labels = cr.labels(threshold)
    ratings = cr.ratings
    frame = pd.DataFrame({"user_id": ratings["user_id"], "item_id": ratings["item_id"],
                          "label": labels, "rating": ratings["rating"],
                          "timestamp": ratings["timestamp"].fillna(0.0)})
    for c in cols:
        frame[c] = ratings[c]
    users, items = cr.users, cr.items.copy()
    item_cols = [c for c in items.columns if c not in ("item_id", "title", "genres")]
    if items["genres"].map(len).any():
        items["genre1"] = items["genres"].map(lambda g: g[0] if g else "none")
        item_cols.insert(0, "genre1")
    clash = sorted(set(users.columns[1:]) & set(item_cols) | (set(users.columns[1:]) | set(item_cols)) & set(frame))
    if clash:  # e.g. a user's and an item's "state": keep both, prefixed
        users = users.rename(columns={c: f"user_{c}" for c in users.columns[1:]})
        items = items.rename(columns={c: f"item_{c}" for c in item_cols})
        item_cols = [f"item_{c}" for c in item_cols]
    frame = frame.merge(users, on="user_id", how="left").merge(items[["item_id", *item_cols]], on="item_id", how="left")
    fields = [Field("user_id", "categorical", "user")]
    fields += [Field(c, "categorical", "user") for c in users.columns[1:]]
    fields += [Field("item_id", "categorical", "item", id_dropout=True)]
    fields += [Field(c, "categorical", "item") for c in item_cols]
    fields += [Field.context_field(c, cr.schema.context[c].type) for c in cols]
    fields += [Field(name, "vector", "item", key="item_id", modality=True) for name in (vectors or {})]
    return RankingData(f"context:{cr.schema.name}", frame.reset_index(drop=True), fields, dict(vectors or {}),
                       users)


INTERACTION_COLUMNS = ("user_id", "item_id", "label", "timestamp")


def check_interactions(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """An interactions frame given in place of a dataset's own (``--events``): columns, labels, ids as str.

    Needs user_id, item_id, label (0/1) and timestamp; session_id is kept when present.
    """
    missing = [c for c in INTERACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: interactions lack columns {missing} (got {sorted(frame.columns)})")
    if frame.empty:
        raise ValueError(f"{source}: no interactions to train on")
    bad = ~frame["label"].isin([0, 1])
    if bad.any():
        raise ValueError(f"{source}: label must be 0/1, row {int(np.flatnonzero(bad.to_numpy())[0])} has "
                         f"{frame['label'][bad].iloc[0]!r}")
    out = frame.copy()
    out["user_id"], out["item_id"] = out["user_id"].astype(str), out["item_id"].astype(str)
    out["label"] = out["label"].astype("int64")
    out["timestamp"] = pd.to_numeric(out["timestamp"], errors="raise").astype("float64")
    return out.reset_index(drop=True)


def movielens_dataset(root: str | Path, vectors: VectorTables | None = None,
                      interactions: pd.DataFrame | None = None) -> RankingData:
    """MovieLens-with-posters -> impressions (label = rating >= 4) with user and item fields.

    ``interactions`` (user_id, item_id, label, timestamp), e.g. a service's event log, replace the ratings;
    users and items it names that the folder lacks get unknown field values.
    """

    ml = load_movielens(root, check_posters=False)
    users = ml.users.copy()
    users["zip1"] = users["zip_code"].fillna("?").astype(str).str[:1]
    items = ml.items.copy()
    items["genre1"] = items["genres"].map(lambda g: g[0] if len(g) > 0 else "none")
    items["genre2"] = items["genres"].map(lambda g: g[1] if len(g) > 1 else "none")
    inter = ml.interactions(threshold=4) if interactions is None else check_interactions(interactions, "interactions")
    if interactions is not None:
        users["user_id"], items["item_id"] = users["user_id"].astype(str), items["item_id"].astype(str)
        inter = inter[[c for c in inter.columns if c in (*INTERACTION_COLUMNS, "session_id")]]
    frame = inter.merge(users, on="user_id", how="left").merge(
        items[["item_id", "release_year", "genre1", "genre2"]], on="item_id", how="left")
    frame["age"] = frame["age"].astype("float64")
    frame["release_year"] = frame["release_year"].astype("float64")
    fields = [
        Field("user_id", "categorical", "user"),
        Field("age", "numeric", "user", buckets=8),
        Field("gender", "categorical", "user"),
        Field("occupation", "categorical", "user"),
        Field("zip1", "categorical", "user"),
        Field("item_id", "categorical", "item", id_dropout=True),
        Field("release_year", "numeric", "item", buckets=10),
        Field("genre1", "categorical", "item"),
        Field("genre2", "categorical", "item"),
    ]
    fields += [Field(name, "vector", "item", key="item_id", modality=True) for name in (vectors or {})]
    fields += [history_field()] if vectors else []
    return RankingData("movielens", frame.reset_index(drop=True), fields, dict(vectors or {}), users)


def session_oracle_affect(sessions: pd.DataFrame) -> pd.DataFrame:
    """The world's simulated session state as an affect frame (index session_id) in the ``session_state``
    schema (``AffectContextSchema.session_state``): one-hot emotion (EMOTIONS order) and intent (sorted)."""
    intents = sorted(sessions["intent"].astype(str).unique())
    schema = AffectContextSchema.session_state(intents)
    emo = np.stack([(sessions["emotion"].astype(str) == e).to_numpy(np.float32) for e in EMOTIONS], axis=1)
    intent = np.stack([(sessions["intent"].astype(str) == i).to_numpy(np.float32) for i in intents], axis=1)
    index = pd.Index(sessions["session_id"].astype(str).to_numpy(), name="session_id")
    return pd.DataFrame(np.hstack([emo, intent]), index=index, columns=list(schema.columns))


def affect_field(schema: AffectContextSchema, key: str = "session_id") -> Field:
    """The affect context's vector field (context side, looked up by ``key``), carrying its schema."""
    return Field("affect", "vector", "context", key=key, modality=False, affect_schema=schema.to_dict())


def with_affect(data: RankingData, table: pd.DataFrame, schema: AffectContextSchema | None = None) -> RankingData:
    """``data`` with an affect context: the vector field ``affect`` (its schema saved with the ranker) over
    ``table`` (index session_id; columns = the schema's, default ``AffectContextSchema.from_columns``)."""
    schema = schema or AffectContextSchema.from_columns(table.columns)
    table = schema.check_frame(table, f"{data.name}: affect context")
    fields = [f for f in data.fields if f.name != "affect"] + [affect_field(schema)]
    vectors = {**data.vectors, "affect": (table.index.astype(str).tolist(), table.to_numpy(np.float32))}
    return RankingData(data.name, data.frame, fields, vectors, data.users)


def world_dataset(world_dir: str | Path, vectors: VectorTables | None = None,
                  affect: pd.DataFrame | None = None, interactions: pd.DataFrame | None = None,
                  affect_schema: AffectContextSchema | None = None) -> RankingData:
    """A generated world -> impressions with user, item, session fields; ``affect`` indexed by session_id
    (its ``affect_schema``, default read from its column names, is saved with a ranker trained on it).

    ``interactions`` (user_id, item_id, label, timestamp, session_id), e.g. the service's event log, replace
    the world's own; users, items and sessions the world lacks get unknown field values and zero vectors.

    Without ``affect`` the simulated session state (``session_oracle_affect``) is used. Ground truth
    (the users' taste type, the items' style / subject / palette, the sessions' emotion and intent) is
    never a field: the model must read it from content vectors and the affect context.
    """
    w = load_world(world_dir, check_files=False)
    users = w.users.drop(columns=["taste_type"]).copy()
    items = w.items[["item_id", "creator_id", "series_id", "tags"]].copy()
    items["tags"] = items["tags"].map(lambda ts: [t["text"] if isinstance(t, dict) else str(t) for t in ts])
    if interactions is None:
        inter = w.interactions[["user_id", "item_id", "label", "timestamp", "session_id"]]
    else:
        inter = check_interactions(interactions, "interactions")
        inter = inter.assign(session_id=inter["session_id"].fillna("").astype(str) if "session_id" in inter else "")
        inter = inter[["user_id", "item_id", "label", "timestamp", "session_id"]]
        users["user_id"], items["item_id"] = users["user_id"].astype(str), items["item_id"].astype(str)
    frame = inter.merge(
        users, on="user_id", how="left").merge(items, on="item_id", how="left")
    for c in ("user_id", "item_id", "session_id"):
        frame[c] = frame[c].astype(str)
    fields = [Field("user_id", "categorical", "user")]
    for c in users.columns.drop("user_id"):
        listed = users[c].map(lambda v: isinstance(v, list)).any()
        fields.append(Field(c, "tags", "user", max_len=8) if listed else Field(c, "categorical", "user"))
    fields += [Field("item_id", "categorical", "item", id_dropout=True), Field("creator_id", "categorical", "item"),
               Field("series_id", "categorical", "item"), Field("tags", "tags", "item", max_len=8)]
    tables = dict(vectors or {})
    fields += [Field(name, "vector", "item", key="item_id", modality=True) for name in tables]
    fields += [history_field()] if tables else []
    users = users.assign(taste_type=w.users["taste_type"].to_numpy())
    data = RankingData("world", frame.reset_index(drop=True), fields, tables, users)
    if affect is None:
        return with_affect(data, session_oracle_affect(w.sessions))
    return with_affect(data, affect, affect_schema)


def catalog_dataset(root: str | Path, vectors: VectorTables | None = None,
                    interactions: pd.DataFrame | None = None) -> RankingData:
    """A catalog folder (``aigcrec.data.layouts``: items.csv + images + interactions.csv) -> impressions.

    Fields: the user and item ids, the item's tag texts and, when items.csv has the column, its
    ``creator_id``; no user features (the layout has none). ``interactions`` replace the folder's own.
    """

    items = read_catalog(root, check_images=False).items
    if interactions is None:
        inter = load_interactions(root, set(items["item_id"]))
    else:
        inter = check_interactions(interactions, "interactions")
    if inter.empty:
        raise ValueError(f"{root}: no interactions to train a ranker on (expected interactions.csv with "
                         "user_id, item_id, label, timestamp)")
    cols = ["item_id", "tags", *(["creator_id"] if "creator_id" in items.columns else [])]
    table = items[cols].assign(tags=items["tags"].map(lambda ts: [t["text"] for t in ts]))
    frame = inter[[c for c in inter.columns if c in (*INTERACTION_COLUMNS, "session_id")]].merge(
        table, on="item_id", how="left")
    frame["tags"] = frame["tags"].map(lambda v: v if isinstance(v, list) else [])
    fields = [Field("user_id", "categorical", "user"), Field("item_id", "categorical", "item", id_dropout=True),
              Field("tags", "tags", "item", max_len=8)]
    fields += [Field("creator_id", "categorical", "item")] if "creator_id" in cols else []
    fields += [Field(name, "vector", "item", key="item_id", modality=True) for name in (vectors or {})]
    fields += [history_field()] if vectors else []
    users = pd.DataFrame({"user_id": sorted(frame["user_id"].astype(str).unique())})
    return RankingData("catalog", frame.reset_index(drop=True), fields, dict(vectors or {}), users)
