"""Affect over a world's sessions: encode every session once (cached), and the ranker's affect context.

A world's ``sessions`` frame has session_id, emotion, intent, text, face_path, voice_path, split; paths are
relative to the world folder. Labels map to indices in ``EMOTIONS`` and the intent label set (-1 unknown).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES, Encoded
from aigcrec.affect.predictor import AffectPredictor, build_encoders, states_frame
from aigcrec.data.schemas import EMOTIONS, INTENTS
from aigcrec.logs import progress

log = logging.getLogger("aigcrec.affect")

COLUMNS: dict[str, tuple[str, ...]] = {"text": ("text",), "voice": ("voice_path", "voice"), "face": ("face_path", "face")}
"""Column names per modality (``load_world`` frames use *_path; the world's utterances.csv the short ones)."""


def intent_labels(cfg: AffectConfig) -> list[str]:
    """The configured intents, or the world's AIGC intents."""
    if cfg.intents:
        return list(cfg.intents)
    return list(INTENTS)


def world_root(world: Any) -> Path:
    """Folder of a loaded world (or the folder itself)."""
    if isinstance(world, (str, Path)):
        return Path(world)
    for attr in ("root", "path", "dir", "directory"):
        if getattr(world, attr, None) is not None:
            return Path(getattr(world, attr))
    raise ValueError(f"expected a world folder or a loaded world with a .root, got {type(world).__name__}")


def label_index(values: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """Label names -> indices (-1 for unknown or missing)."""
    lookup = {name: i for i, name in enumerate(labels)}
    return np.array([lookup.get(v, -1) if isinstance(v, str) else -1 for v in values], dtype=np.int64)


def session_inputs(sessions: pd.DataFrame, root: Path) -> dict[str, list[Any]]:
    """Raw inputs per modality (paths resolved against ``root``; empty / NaN -> None)."""
    out: dict[str, list[Any]] = {}
    for m, names in COLUMNS.items():
        col = next((c for c in names if c in sessions), None)
        if col is None:
            out[m] = [None] * len(sessions)
            continue
        vals = []
        for v in sessions[col].tolist():
            if not isinstance(v, str) or not v.strip():
                vals.append(None)
            elif m == "text":
                vals.append(v)
            else:
                p = Path(v)
                vals.append(p if p.is_absolute() else root / p)
        out[m] = vals
    return out


def encode_sessions(sessions: pd.DataFrame, root: Path, cfg: AffectConfig, chunk: int = 64,
                    face_crops: tuple[list[np.ndarray | None], list[tuple[int, str]]] | None = None
                    ) -> tuple[AffectData, pd.DataFrame]:
    """Encode every session's text, voice and face once; returns the features and a problems frame
    (session_id, modality message) for inputs that could not be read (treated as missing).

    ``face_crops``: the faces already detected and cropped as the face encoder would (``(crops, problems)`` of
    ``affect.tasks.world_face_crops``), read without detecting them again (the same features)."""

    missing = [c for c in ("session_id", "emotion", "intent") if c not in sessions]
    if missing:
        raise ValueError(f"expected session columns session_id, emotion, intent, ...; missing {missing}")
    encoders = build_encoders(cfg.encoders)
    inputs = session_inputs(sessions, root)
    if face_crops is not None:
        encoders["face"] = build_encoders(cfg.encoders.model_copy(update={"face_detect": "none"}), ("face",))["face"]
        inputs["face"] = face_crops[0]
    n = len(sessions)
    parts: dict[str, list[Encoded]] = {m: [] for m in MODALITIES}
    with progress() as bar:
        task = bar.add_task("encoding sessions", total=n)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            for m in MODALITIES:
                enc = encoders[m].encode(inputs[m][start:stop], batch_size=chunk)
                enc.problems = [(start + i, msg) for i, msg in enc.problems]
                parts[m].append(enc)
            bar.advance(task, stop - start)
    feats = {m: Encoded.concat(p) for m, p in parts.items()}
    if face_crops is not None:
        feats["face"].problems = list(face_crops[1]) + feats["face"].problems
    ids = sessions["session_id"].astype(str).to_numpy(dtype=object)
    problems = pd.DataFrame([(ids[i], msg) for e in feats.values() for i, msg in e.problems],
                            columns=["session_id", "problem"])
    data = AffectData(feats, label_index(sessions["emotion"], EMOTIONS),
                      label_index(sessions["intent"], intent_labels(cfg)), ids)
    log.info("encoded %d sessions: text %d, voice %d, face %d present; %d problems", n,
             *(int(feats[m].present.sum()) for m in MODALITIES), len(problems))
    return data, problems


def predict_sessions(world: Any, predictor: AffectPredictor, features: AffectData | None = None) -> pd.DataFrame:
    """The ranker's affect context: one row per session (index session_id), float columns
    (``emotion_p_*``, ``intent_p_*``, ``emb_*``, ``confidence``, ``uses_*``; see ``states_frame``).

    ``world``: a loaded world, or a sessions frame (relative media paths then resolve against the working
    folder). ``features``: the sessions already encoded (same order), to skip encoding.
    """
    if isinstance(world, pd.DataFrame):
        sessions, root = world, Path.cwd()
    else:
        sessions, root = world.sessions, world_root(world)
    if features is None:
        states, problems = predictor.predict_many(session_inputs(sessions, root))
        for row, msg in problems:
            log.warning("session %s: %s (treated as missing)", sessions["session_id"].iloc[row], msg)
    else:
        if len(features) != len(sessions):
            raise ValueError(f"expected features for {len(sessions)} sessions, got {len(features)}")
        states = predictor.predict_features(features)
    return states_frame(sessions["session_id"].astype(str).tolist(), states)
