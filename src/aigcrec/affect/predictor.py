"""In-process inference: raw text / voice / face (any subset) to an :class:`AffectState`.

``AffectPredictor.load(dir)`` reads a model saved by ``aigcrec train mmei`` (its ``config.json`` names the
encoders) and builds only the encoders that model uses. Inputs are decoded in memory: nothing raw is
written to disk.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from aigcrec.affect.config import EncoderConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES, Encoded, ModalityEncoder
from aigcrec.affect.encoders.factory import build_encoder
from aigcrec.affect.model import AffectModel, Prediction
from aigcrec.affect.state import AffectState
from aigcrec.data.affect_context import AffectContextSchema
from aigcrec.data.schemas import EMOTIONS

log = logging.getLogger("aigcrec.affect")


def build_encoders(cfg: EncoderConfig, modalities: Sequence[str] = MODALITIES) -> dict[str, ModalityEncoder]:
    """The configured encoder of each modality in ``modalities``."""
    return {m: build_encoder(m, getattr(cfg, m), cfg) for m in modalities}


def encode_inputs(encoders: dict[str, ModalityEncoder], inputs: dict[str, Sequence[Any]], n: int,
                  batch_size: int = 32) -> dict[str, Encoded]:
    """Encode raw inputs per modality (``None`` entries = missing; a modality without inputs = all missing)."""
    out = {}
    for m, enc in encoders.items():
        items = inputs.get(m)
        out[m] = enc.encode(list(items) if items is not None else [None] * n, batch_size=batch_size)
    return out


def _weights(pred: Prediction, row: int, present: np.ndarray) -> dict[str, float]:
    """Fusion weights by modality (0 for unused ones) and, for MMEI, of the cross-modal summary."""
    w = {m: float(pred.fusion_weights[row, j]) if present[j] else 0.0 for j, m in enumerate(pred.modalities)}
    if pred.fusion_weights.shape[1] > len(pred.modalities):
        w["cross-modal"] = float(pred.fusion_weights[row, len(pred.modalities)])
    return w


def states_from_prediction(pred: Prediction, intents: list[str], present: np.ndarray) -> list[AffectState]:
    """One AffectState per row; ``present`` (N, M) bool in ``pred.modalities`` order."""
    states = []
    for r in range(len(pred.emotion_probs)):
        pe, pi = pred.emotion_probs[r], pred.intent_probs[r]
        used = [m for j, m in enumerate(pred.modalities) if present[r, j]]
        states.append(AffectState(
            emotion=EMOTIONS[int(pe.argmax())],
            emotion_probs={e: float(p) for e, p in zip(EMOTIONS, pe)},
            intent=intents[int(pi.argmax())] if intents else "",
            intent_probs={i: float(p) for i, p in zip(intents, pi)},
            embedding=pred.embedding[r].astype(np.float32),
            confidence=float(pe.max()),
            modalities_used=used,
            fusion_weights=_weights(pred, r, present[r]),
        ))
    return states


_BLAS = None


def _one_blas_thread():
    """Context: the BLAS libraries (numpy's, OpenCV's) on one thread while one request's inputs are encoded.

    At batch size 1 their matrices are small and extra BLAS threads only synchronise and spin: with them,
    text + 3 s voice took 32.5 ms p50 and all three signals 79.3 ms; on one thread 14.8 and 55.4 ms
    (benchmarks/affect_latency.py, 2 torch threads). ~15 us per call.
    """
    global _BLAS

    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


class AffectPredictor:
    """Encoders + a trained affect model; ``predict`` serves one request, ``predict_many`` a batch.

    ``encoders`` None: built from the model's saved encoder settings on first use of raw inputs
    (``predict_features`` never needs them).
    """

    def __init__(self, model: AffectModel, encoders: dict[str, ModalityEncoder] | None = None) -> None:
        self.model = model
        self._encoders = None if encoders is None else self._check(encoders)
        self._prior: AffectState | None = None

    def _check(self, encoders: dict[str, ModalityEncoder]) -> dict[str, ModalityEncoder]:
        missing = [m for m in self.model.modalities if m not in encoders]
        if missing:
            raise ValueError(f"expected encoders for the model's modalities {self.model.modalities}, "
                             f"missing {missing}")
        return {m: encoders[m] for m in self.model.modalities}

    @property
    def encoders(self) -> dict[str, ModalityEncoder]:
        if self._encoders is None:
            cfg = EncoderConfig(**self.model.encoders) if self.model.encoders else EncoderConfig()
            self._encoders = build_encoders(cfg, self.model.modalities)
        return self._encoders

    @property
    def context_schema(self) -> AffectContextSchema:
        """Every column this predictor's readings give (``mmei_state``: its intents, its embedding width)."""
        return AffectContextSchema.mmei_state(self.model.intents, self.model.embedding_dim)

    @classmethod
    def load(cls, directory: str | Path, warm: bool = True, runtime: str = "torch", threads: int = 1
             ) -> "AffectPredictor":
        """Model from ``directory``; ``warm`` builds the encoders now (else on first raw input).

        ``runtime="onnx"`` runs the text encoder's transformer with ONNX Runtime on ``threads`` threads
        (``TextEncoder.use_onnx``; implies ``warm``): the serving setting.
        """
        if runtime not in ("torch", "onnx"):
            raise ValueError(f"runtime: expected 'torch' or 'onnx', got {runtime!r}")
        predictor = cls(AffectModel.load(directory))
        if warm or runtime == "onnx":
            predictor.encoders  # noqa: B018 - build them now so the first request is fast
        if runtime == "onnx" and "text" in predictor.encoders:
            predictor.encoders["text"].use_onnx(threads)
        return predictor

    def predict(self, text: str | None = None, voice: Any = None, face: Any = None) -> AffectState:
        """Any subset of text, voice (WAV bytes | path | (samples, sr)) and face (image bytes | path | PIL | array).

        Raises ValueError when nothing is given or an input cannot be read; a photo without a face or a
        silent clip is simply not used (see ``modalities_used``; with nothing usable the training prior
        is returned with its low confidence).
        """
        given = {"text": text, "voice": voice, "face": face}
        if all(v is None for v in given.values()):
            raise ValueError("expected at least one of text, voice or face, got none")
        unused = [m for m, v in given.items() if v is not None and m not in self.encoders]
        if unused:
            log.warning("model %s does not use %s; ignored", self.model.modalities, unused)
        with _one_blas_thread():
            feats = encode_inputs(self.encoders, {m: [v] for m, v in given.items()}, 1)
        problems = [msg for e in feats.values() for _, msg in e.problems]
        if problems:
            raise ValueError("; ".join(problems))
        return self._states(feats, 1)[0]

    def prior(self) -> AffectState:
        """The state of a request with no usable signal: the model's training prior, low confidence (what a
        stated affect state without signals is merged into, ``aigcrec.service.stated``). Computed once."""
        if self._prior is None:
            with _one_blas_thread():
                feats = encode_inputs(self.encoders, {}, 1)
            self._prior = self._states(feats, 1)[0]
        return dataclasses.replace(self._prior, modalities_used=list(self._prior.modalities_used))

    def predict_many(self, inputs: dict[str, Sequence[Any]]) -> tuple[list[AffectState], list[tuple[int, str]]]:
        """Batch version: ``inputs`` modality -> list (``None`` = missing). Unreadable inputs are reported in
        the returned problems ``(row, message)`` and treated as missing, never a crash."""
        n = max(len(v) for v in inputs.values())
        feats = encode_inputs(self.encoders, inputs, n)
        problems = sorted(p for e in feats.values() for p in e.problems)
        return self._states(feats, n), problems

    def predict_features(self, data: AffectData) -> list[AffectState]:
        """States of already-encoded samples."""
        return self._states(data.features, len(data))

    def _states(self, feats: dict[str, Encoded], n: int) -> list[AffectState]:
        data = AffectData(feats, np.full(n, -1), np.full(n, -1))
        pred = self.model.predict(data)
        present = np.stack([feats[m].present for m in pred.modalities], axis=1)
        return states_from_prediction(pred, self.model.intents, present)


def states_frame(ids: Sequence[str], states: list[AffectState],
                 schema: AffectContextSchema | None = None) -> pd.DataFrame:
    """Float32 columns per state, indexed by ``session_id``, in ``schema``'s order (default the states'
    ``mmei_state`` layout: ``emotion_p_<e>``, ``intent_p_<i>``, ``emb_<j>``, ``confidence``, ``uses_<m>``)."""
    if schema is None:
        if not states:
            raise ValueError("states_frame: expected at least one state (or a schema), got none")
        schema = state_schema(states[0])
    return schema.frame(ids, states)


def state_schema(state: AffectState) -> AffectContextSchema:
    """The ``mmei_state`` schema of a reading like ``state`` (its intent labels and embedding width)."""
    return AffectContextSchema.mmei_state(list(state.intent_probs), len(state.embedding))
