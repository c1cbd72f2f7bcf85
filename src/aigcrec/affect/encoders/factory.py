"""``build_encoder(modality, name, cfg)``: the configured encoder of one modality.

Apart from ``base.py`` because it imports every modality's encoder, and those import ``base``.
"""

from __future__ import annotations

from typing import Any

from aigcrec.affect.encoders.base import MODALITIES, ModalityEncoder
from aigcrec.affect.encoders.face import FaceEncoder
from aigcrec.affect.encoders.text import TextEncoder
from aigcrec.affect.encoders.voice import VoiceEncoder


def build_encoder(modality: str, name: str, cfg: Any) -> ModalityEncoder:
    """The encoder ``name`` for ``modality`` with ``cfg`` an :class:`~aigcrec.affect.config.EncoderConfig`."""
    if modality == "text":
        return TextEncoder(name, max_tokens=cfg.max_tokens)
    if modality == "voice":
        return VoiceEncoder(name, sample_rate=cfg.sample_rate, max_seconds=cfg.max_seconds,
                            silence_dbfs=cfg.silence_dbfs, segment_ms=cfg.voice_segment_ms)
    if modality == "face":
        return FaceEncoder(name, detect=cfg.face_detect, margin=cfg.face_margin, scale_factor=cfg.face_scale_factor,
                           min_neighbors=cfg.face_min_neighbors, pad=cfg.face_pad)
    raise ValueError(f"expected a modality in {MODALITIES}, got {modality!r}")
