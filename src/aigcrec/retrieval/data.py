"""What the two-tower model trains on: the positives (with their session context), user features, content.

- ``world_retrieval_data``: a generated world's bookmarks; context per session from the affect-context
  frame the demo writes (``emotion_p_<e>``, ``intent_p_<i>`` columns of
  ``aigcrec.affect.predictor.states_frame``), else the simulated session state as one-hot probabilities;
- ``movielens_retrieval_data``: MovieLens ratings >= 4 as positives, no session context.

Content vectors come in as ``{name: (item_ids, matrix)}`` (``aigcrec.content.store.FeatureStore.load``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from aigcrec.data.movielens import load_movielens
from aigcrec.data.schemas import EMOTIONS, INTENTS
from aigcrec.data.world import load_world

VectorTables = dict[str, tuple[list[str], np.ndarray]]
CONTENT_BLOCKS = ("e_sem", "e_sty", "e_tsem")
EMOTION_PREFIX, INTENT_PREFIX = "emotion_p_", "intent_p_"
_EPS = 1e-12


def context_columns(frame: pd.DataFrame) -> list[str]:
    """The probability columns of an affect-context frame the two-tower reads (emotion, then intent)."""
    return ([c for c in frame.columns if str(c).startswith(EMOTION_PREFIX)]
            + [c for c in frame.columns if str(c).startswith(INTENT_PREFIX)])


def state_context(emotion_probs: Mapping[str, float], intent_probs: Mapping[str, float],
                  names: Sequence[str]) -> np.ndarray:
    """An affect state's probabilities in the column order ``names`` (a name the state lacks is 0): ``(C,)``."""
    values = {f"{EMOTION_PREFIX}{k}": float(v) for k, v in dict(emotion_probs).items()}
    values.update({f"{INTENT_PREFIX}{k}": float(v) for k, v in dict(intent_probs).items()})
    return np.array([values.get(n, 0.0) for n in names], dtype=np.float32)


def session_state_context(sessions: pd.DataFrame, intents: Sequence[str]) -> pd.DataFrame:
    """The simulated session state (one-hot emotion and intent) as a context frame indexed by session_id."""
    emo = np.stack([(sessions["emotion"].astype(str) == e).to_numpy(np.float32) for e in EMOTIONS], axis=1)
    intent = np.stack([(sessions["intent"].astype(str) == i).to_numpy(np.float32) for i in intents], axis=1)
    cols = [f"{EMOTION_PREFIX}{e}" for e in EMOTIONS] + [f"{INTENT_PREFIX}{i}" for i in intents]
    return pd.DataFrame(np.hstack([emo, intent]), index=pd.Index(sessions["session_id"].astype(str), name="session_id"),
                        columns=cols)


def principal_axes(xc: np.ndarray, k: int, seed: int = 0, power_iters: int = 3) -> np.ndarray:
    """Top-``k`` principal axes ``(D, k)`` of centred rows ``xc (s, D)`` by randomised SVD (Halko et al. 2011)."""
    s, d = xc.shape
    k = min(k, s, d)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(xc @ rng.standard_normal((d, k + 10)).astype(np.float32))  # (s, k+10)
    for _ in range(power_iters):
        q, _ = np.linalg.qr(xc @ (xc.T @ q))
    _, _, vt = np.linalg.svd(q.T @ xc, full_matrices=False)  # (k+10, D)
    return vt[:k].T.astype(np.float32)


class ContentInput:
    """Item content as one input row of width ``P``:

        c = concat_b( (f_b - mu_b) / ||f_b - mu_b|| ) / sqrt(B),     x = (c - c_bar) W        (W: D x P)

    ``mu_b`` is the block's catalog mean; ``W`` the top-``P`` principal axes of the catalog's ``c`` (fitted
    once, when ``D > P``; otherwise ``x = c``): the towers read a few hundred numbers instead of the ~2,400 of
    e_SEM + e_STY + e_TSEM, at a fraction of the training cost. Rows of any item, new ones included.
    """

    def __init__(self, means: Mapping[str, np.ndarray], center: Optional[np.ndarray] = None,
                 axes: Optional[np.ndarray] = None) -> None:
        self.means = {b: np.asarray(m, dtype=np.float32) for b, m in means.items()}
        self.blocks = list(self.means)
        self.center = None if center is None else np.asarray(center, np.float32)  # (D,)
        self.axes = None if axes is None else np.asarray(axes, np.float32)  # (D, P)

    @classmethod
    def fit(cls, features: Mapping[str, np.ndarray], blocks: Sequence[str] = CONTENT_BLOCKS, width: int = 0,
            seed: int = 0, sample: int = 8000) -> "ContentInput":
        """Block means on ``features``; with ``width`` > 0 and a wider concatenation, its principal axes too."""
        missing = [b for b in blocks if b not in features]
        if missing:
            raise ValueError(f"ContentInput.fit: expected content blocks {list(blocks)}, missing {missing}")
        plain = cls({b: np.asarray(features[b], dtype=np.float32).mean(axis=0) for b in blocks})
        if not width or plain.dim <= width:
            return plain
        n = len(features[blocks[0]])
        rows = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False)
        c = plain.transform({b: np.asarray(features[b])[rows] for b in blocks})  # (s, D)
        center = c.mean(axis=0)
        axes = principal_axes(c - center, width, seed)  # (D, <= width)
        if axes.shape[1] < width:  # tiny catalogs: pad so the width is always `width`
            axes = np.pad(axes, ((0, 0), (0, width - axes.shape[1])))
        return cls(plain.means, center, axes)

    @property
    def dim(self) -> int:
        return self.axes.shape[1] if self.axes is not None else sum(len(m) for m in self.means.values())

    def transform(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """``{block: (n, d_b)}`` -> ``(n, P)`` float32."""
        parts = []
        for b, mu in self.means.items():
            if b not in features:
                raise ValueError(f"content input: expected block {b!r}, got {sorted(features)}")
            x = np.asarray(features[b], dtype=np.float32).reshape(-1, len(mu)) - mu  # (n, d_b)
            parts.append(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS))
        c = (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)  # (n, D)
        if self.axes is not None:
            c = (c - self.center) @ self.axes  # (n, P)
        return c.astype(np.float32)


@dataclass
class RetrievalData:
    """Training material of the two-tower model.

    ``positives``: user_id, item_id, timestamp, session_id (None without sessions), sorted by time;
    ``content``: block -> ``(n, d_b)`` rows of ``item_ids`` (the catalog items with every block);
    ``users``: user_id plus the categorical ``user_features`` columns; ``context``: numeric frame indexed by
    session_id (``context_columns``), or None (no session context); ``shown``: the items with any row (liked
    or not) in the interactions the positives come from, or None (only positives known: the liked items).
    """

    name: str
    positives: pd.DataFrame
    item_ids: list[str]
    content: dict[str, np.ndarray]
    users: pd.DataFrame
    user_features: list[str]
    context: Optional[pd.DataFrame]
    shown: Optional[list[str]] = None


def restricted(data: RetrievalData, interactions: pd.DataFrame) -> RetrievalData:
    """``data`` with only the positives that are label-1 rows of ``interactions`` (same user, item and
    timestamp): training on a split's training rows when the loader read the whole catalog's."""
    rows = interactions[interactions["label"].astype(int) == 1]
    keys = set(zip(rows["user_id"].astype(str), rows["item_id"].astype(str), pd.to_numeric(rows["timestamp"]).astype(float)))
    pos = data.positives
    keep = [(u, i, float(t)) in keys for u, i, t in zip(pos["user_id"], pos["item_id"], pd.to_numeric(pos["timestamp"]))]
    return RetrievalData(data.name, pos[keep].reset_index(drop=True), data.item_ids, data.content, data.users,
                         data.user_features, data.context, _shown(interactions, data.item_ids))


def aligned_content(vectors: VectorTables, blocks: Sequence[str] = CONTENT_BLOCKS) -> tuple[list[str], dict[str, np.ndarray]]:
    """Item ids that have every block, and each block's rows in that order."""
    missing = [b for b in blocks if b not in vectors]
    if missing:
        raise ValueError(f"content vectors: expected blocks {list(blocks)}, missing {missing} (have {sorted(vectors)})")
    keep = set(vectors[blocks[0]][0])
    for b in blocks[1:]:
        keep &= set(vectors[b][0])
    ids = [str(i) for i in vectors[blocks[0]][0] if i in keep]
    out = {}
    for b in blocks:
        pos = {str(i): r for r, i in enumerate(vectors[b][0])}
        out[b] = np.asarray(vectors[b][1], dtype=np.float32)[[pos[i] for i in ids]]
    return ids, out


def _shown(inter: pd.DataFrame, item_ids: Sequence[str]) -> list[str]:
    """The items of ``item_ids`` with any row in ``inter``, in ``item_ids`` order."""
    seen = set(inter["item_id"].astype(str))
    return [i for i in item_ids if i in seen]


def _positives(inter: pd.DataFrame, known: set[str]) -> pd.DataFrame:
    pos = inter[inter["label"].astype(int) == 1].copy()
    pos["user_id"], pos["item_id"] = pos["user_id"].astype(str), pos["item_id"].astype(str)
    pos["session_id"] = pos["session_id"].astype(str) if "session_id" in pos else None
    pos = pos[pos["item_id"].isin(known)]
    return pos.sort_values("timestamp", kind="stable")[["user_id", "item_id", "timestamp", "session_id"]].reset_index(
        drop=True)


def world_retrieval_data(world_dir: str | Path, vectors: VectorTables, affect: Optional[pd.DataFrame] = None,
                         interactions: Optional[pd.DataFrame] = None) -> RetrievalData:
    """A world's bookmarks with their session context (``affect`` indexed by session_id, else the sessions'
    simulated state); user features age_group, country, gender, lang (never the ground-truth taste type)."""
    world = load_world(world_dir, check_files=False)
    ids, content = aligned_content(vectors)
    inter = world.interactions if interactions is None else interactions
    if affect is not None:
        cols = context_columns(affect)
        if not cols:
            raise ValueError(f"affect context: expected {EMOTION_PREFIX}<e> / {INTENT_PREFIX}<i> columns, got "
                             f"{list(affect.columns)[:8]}...")
        context = affect[cols].astype(np.float32)
    else:
        context = session_state_context(world.sessions, INTENTS)
    feats = [c for c in ("age_group", "country", "gender", "lang") if c in world.users.columns]
    users = world.users[["user_id", *feats]].astype(object)
    return RetrievalData("world", _positives(inter, set(ids)), ids, content, users, feats, context, _shown(inter, ids))


def movielens_retrieval_data(root: str | Path, vectors: VectorTables, threshold: float = 4) -> RetrievalData:
    """MovieLens ratings >= ``threshold`` as positives; user features age (decade), gender, occupation."""
    ml = load_movielens(root, check_posters=False)
    ids, content = aligned_content(vectors)
    inter = ml.interactions(threshold=threshold)
    users = ml.users[["user_id", "gender", "occupation"]].astype(object).copy()
    users["user_id"] = users["user_id"].astype(str)
    age = pd.to_numeric(ml.users["age"], errors="coerce")
    users["age_decade"] = [None if pd.isna(a) or a <= 0 else f"{int(a) // 10 * 10}s" for a in age]
    return RetrievalData("movielens", _positives(inter, set(ids)), ids, content, users,
                         ["gender", "occupation", "age_decade"], None, _shown(inter, ids))


def catalog_retrieval_data(catalog_dir: str | Path, layout: str, vectors: VectorTables,
                           interactions: pd.DataFrame, affect: Optional[pd.DataFrame] = None) -> RetrievalData:
    """Any catalog folder (``aigcrec.data.layouts``): a world or MovieLens with their user features and
    context as above; another layout's interactions with neither (the user tower reads the history alone)."""
    if layout == "world":
        return world_retrieval_data(catalog_dir, vectors, affect, interactions)
    if layout == "movielens":
        return movielens_retrieval_data(catalog_dir, vectors)
    ids, content = aligned_content(vectors)
    users = pd.DataFrame({"user_id": sorted(interactions["user_id"].astype(str).unique())})
    return RetrievalData(layout, _positives(interactions, set(ids)), ids, content, users, [], None,
                         _shown(interactions, ids))
