"""The benchmark tasks: a dataset folder to train / dev / test :class:`AffectData` (features cached on disk).

- ``face-emotion``: FER2013 (``fer2013.npz``), aligned 48x48 crops, so no face detection; splits train/val/test.
- ``text-emotion``: MELD-format CSVs (``{train,dev,test}_sent_emo.csv``).
- ``intent``: CLINC150-format JSON; 150 intents + ``oos`` as the last class; out-of-scope is also
  predicted when the top in-scope probability is below a threshold tuned on val.
- ``fusion``: a world's affect sessions (text, voice, face), split by user into train/dev/test.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import Encoded, build_encoder

log = logging.getLogger("aigcrec.affect")

TASKS = ("face-emotion", "text-emotion", "intent", "fusion")


def cache_key(*parts: Any) -> str:
    """A short digest of what determines cached features (dataset folder, encoder settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def cached(path: Path | None, build: Callable[[], AffectData]) -> AffectData:
    """Load ``path`` if it exists, else build and save it."""
    if path is not None and path.is_file():
        log.info("features from cache %s", path)
        return AffectData.load(path)
    data = build()
    if path is not None:
        data.save(path)
    return data


def _encode(modality: str, items: list[Any], cfg: AffectConfig, label: str) -> Encoded:
    from aigcrec.logs import progress

    enc = build_encoder(modality, getattr(cfg.encoders, modality), cfg.encoders)
    parts, step = [], 256
    with progress() as bar:
        task = bar.add_task(f"encoding {label}", total=len(items))
        for start in range(0, len(items), step):
            parts.append(enc.encode(items[start:start + step], batch_size=64))
            bar.advance(task, min(step, len(items) - start))
    return Encoded.concat(parts)


def _single(modality: str, encoded: Encoded, emotion: np.ndarray, intent: np.ndarray) -> AffectData:
    return AffectData({modality: encoded}, emotion.astype(np.int64), intent.astype(np.int64))


def face_emotion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> dict[str, AffectData]:
    """FER2013 splits as face-only AffectData (emotion labels, no intent)."""
    from aigcrec.data.fer2013 import load_fer2013

    cfg = cfg.model_copy(deep=True)
    cfg.encoders.face_detect = "none"
    fer = load_fer2013(root)
    out = {}
    for split, name in (("train", "train"), ("val", "dev"), ("test", "test")):
        images, labels = fer.subset(split)
        path = cache / f"fer2013-{split}-{cache_key(str(root), cfg.encoders.model_dump())}.npz" if cache else None
        out[name] = cached(path, lambda: _single("face", _encode("face", list(images), cfg, f"FER2013 {split}"),
                                                 labels, np.full(len(labels), -1)))
    return out


def text_emotion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> dict[str, AffectData]:
    """MELD splits as text-only AffectData (emotion labels, no intent)."""
    from aigcrec.data.meld import load_meld

    meld = load_meld(root)
    out = {}
    for split in ("train", "dev", "test"):
        frame = meld.split(split)
        path = cache / f"meld-{split}-{cache_key(str(root), cfg.encoders.model_dump())}.npz" if cache else None
        out[split] = cached(path, lambda: _single("text", _encode("text", frame["text"].tolist(), cfg, f"MELD {split}"),
                                                  frame["label"].to_numpy(), np.full(len(frame), -1)))
    return out


def intent_data(root: Path, cfg: AffectConfig, cache: Path | None, file: str = "data_full.json"
                ) -> tuple[dict[str, AffectData], list[str]]:
    """CLINC150 splits (in-scope + out-of-scope rows) as text-only AffectData with intent labels."""
    from aigcrec.data.clinc150 import load_clinc150

    clinc = load_clinc150(root, file)
    out = {}
    for split, name in (("train", "train"), ("val", "dev"), ("test", "test")):
        frame = clinc.split(split, with_oos=True)
        path = cache / f"clinc-{split}-{cache_key(str(root), file, cfg.encoders.model_dump())}.npz" if cache else None
        out[name] = cached(path, lambda: _single("text", _encode("text", frame["text"].tolist(), cfg,
                                                                 f"CLINC150 {split}"),
                                                 np.full(len(frame), -1), frame["label"].to_numpy()))
    return out, list(clinc.label_names)


def oos_threshold(probs: np.ndarray, y: np.ndarray, oos: int) -> float:
    """Threshold tau on the top in-scope probability maximising (in-scope accuracy + oos recall) / 2 on val."""
    best, best_tau = -1.0, 0.0
    for tau in np.linspace(0.0, 0.95, 96):
        score = np.mean(list(oos_metrics(probs, y, oos, tau).values()))
        if score > best:
            best, best_tau = score, float(tau)
    return best_tau


def oos_metrics(probs: np.ndarray, y: np.ndarray, oos: int, tau: float) -> dict[str, float]:
    """in_scope_accuracy (an in-scope row rejected as oos is wrong) and oos_recall at threshold tau."""
    pred = probs.argmax(1)
    inscope = np.delete(probs, oos, axis=1)
    pred = np.where((pred == oos) | (inscope.max(1) < tau), oos, pred)
    is_oos = y == oos
    return {"in_scope_accuracy": float(np.mean(pred[~is_oos] == y[~is_oos])) if (~is_oos).any() else float("nan"),
            "oos_recall": float(np.mean(pred[is_oos] == oos)) if is_oos.any() else float("nan")}


def load_world_sessions(root: Path) -> pd.DataFrame:
    """The affect sessions of a world folder."""
    from aigcrec.world import load_world

    return load_world(root).sessions


def fusion_data(root: Path, cfg: AffectConfig, cache: Path | None) -> tuple[AffectData, np.ndarray, pd.DataFrame]:
    """All world sessions encoded (cached), their split column and the problems frame."""
    from aigcrec.affect.sessions import encode_sessions

    sessions = load_world_sessions(root)
    key = cache_key(str(Path(root).resolve()), len(sessions), cfg.encoders.model_dump(), cfg.intents)
    path = cache / f"world-{key}.npz" if cache else None
    problems = pd.DataFrame(columns=["session_id", "problem"])
    if path is not None and path.is_file():
        data = AffectData.load(path)
    else:
        data, problems = encode_sessions(sessions, Path(root), cfg)
        if path is not None:
            data.save(path)
    return data, sessions["split"].to_numpy(), problems
