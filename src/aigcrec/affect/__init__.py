"""aigcrec.affect: MMEI, emotion and intent from text, voice and face (docs/affect.md).

Public API (imported lazily so ``aigcrec --help`` and config loading stay light):
``AffectState``, ``AffectPredictor``, ``predict_sessions``, ``MMEIModel``, ``AffectModel``, ``LateFusion``,
``AffectData``, ``Encoded``, ``ModalityEncoder``, ``build_encoder``, ``TextEncoder``, ``VoiceEncoder``,
``FaceEncoder``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AffectState": "aigcrec.affect.state",
    "AffectPredictor": "aigcrec.affect.predictor",
    "predict_sessions": "aigcrec.affect.sessions",
    "encode_sessions": "aigcrec.affect.sessions",
    "MMEIModel": "aigcrec.affect.model",
    "AffectModel": "aigcrec.affect.model",
    "LateFusion": "aigcrec.affect.model",
    "AffectData": "aigcrec.affect.data",
    "Encoded": "aigcrec.affect.encoders.base",
    "ModalityEncoder": "aigcrec.affect.encoders.base",
    "build_encoder": "aigcrec.affect.encoders.factory",
    "TextEncoder": "aigcrec.affect.encoders.text",
    "VoiceEncoder": "aigcrec.affect.encoders.voice",
    "FaceEncoder": "aigcrec.affect.encoders.face",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'aigcrec.affect' has no attribute {name!r}")
