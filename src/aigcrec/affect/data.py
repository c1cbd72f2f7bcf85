"""Encoded affect samples with labels: what the affect models train on (features cached once per dataset)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aigcrec.affect.encoders.base import MODALITIES, Encoded


@dataclass
class AffectData:
    """Per-modality features of N samples and their labels (-1 = unknown, e.g. no intent in FER2013).

    features: modality -> Encoded with N rows (modalities not given count as absent everywhere);
    emotion, intent: (N,) int64 indices into EMOTIONS and the intent label set.
    """

    features: dict[str, Encoded]
    emotion: np.ndarray
    intent: np.ndarray
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __post_init__(self) -> None:
        n = len(self.emotion)
        if self.intent.shape != (n,):
            raise ValueError(f"expected intent labels of shape ({n},), got {self.intent.shape}")
        for m, enc in self.features.items():
            if m not in MODALITIES:
                raise ValueError(f"expected modalities among {MODALITIES}, got {m!r}")
            if len(enc) != n:
                raise ValueError(f"expected {n} rows of {m} features, got {len(enc)}")
        if len(self.ids) == 0:
            self.ids = np.arange(n).astype(str).astype(object)

    def __len__(self) -> int:
        return len(self.emotion)

    def take(self, idx: np.ndarray) -> "AffectData":
        return AffectData({m: e.take(idx) for m, e in self.features.items()}, self.emotion[idx], self.intent[idx],
                          self.ids[idx])

    def with_modalities(self, keep: tuple[str, ...]) -> "AffectData":
        """The same rows with every modality outside ``keep`` marked absent (a modality-subset evaluation)."""
        feats = {}
        for m, e in self.features.items():
            feats[m] = e if m in keep else Encoded(e.seq, e.mask, e.pooled, np.zeros_like(e.present))
        return AffectData(feats, self.emotion, self.intent, self.ids)

    def save(self, path: str | Path) -> Path:
        """One .npz (features are derived vectors, never raw faces or audio)."""
        arrays: dict[str, np.ndarray] = {"emotion": self.emotion, "intent": self.intent,
                                         "ids": self.ids.astype(str)}
        for m, e in self.features.items():
            arrays.update({f"{m}.seq": e.seq.astype(np.float16), f"{m}.mask": e.mask, f"{m}.pooled": e.pooled,
                           f"{m}.present": e.present})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".partial.npz")
        np.savez(tmp, **arrays)  # uncompressed: float16 vectors barely compress and zlib is slow on 2 cores
        tmp.replace(path)  # atomic: an interrupted run never leaves a truncated cache behind
        return path

    @classmethod
    def load(cls, path: str | Path) -> "AffectData":
        z = np.load(path, allow_pickle=False)
        feats = {m: Encoded(z[f"{m}.seq"].astype(np.float32), z[f"{m}.mask"], z[f"{m}.pooled"], z[f"{m}.present"])
                 for m in MODALITIES if f"{m}.seq" in z}
        return cls(feats, z["emotion"], z["intent"], z["ids"].astype(object))
