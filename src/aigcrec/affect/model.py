"""``AffectModel`` (predict / save / load; ``fit`` hands it to ``AffectTrainer``) around an affect network;
``MMEIModel`` is the MMEI one. How it is trained: ``aigcrec.affect.trainer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aigcrec.affect.batches import modality_dropout, to_batch, trim as _trim
from aigcrec.affect.config import MMEIConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.finetune_text import named_base  # transformers itself is imported lazily there
from aigcrec.affect.networks import MMEINetwork, MMEIPaperNetwork, PooledMLPNetwork
from aigcrec.affect.trainer import AffectTrainer, fit_temperature
from aigcrec.saved import read_config, write_config

__all__ = ["ARCHITECTURES", "AffectModel", "LateFusion", "MMEIModel", "Prediction", "fit_temperature",
           "modality_dropout", "to_batch"]

ARCHITECTURES = ("mmei", "mlp", "mmei_paper")
FORMAT = 1  # layout of the saved folder (aigcrec.saved)


@dataclass
class Prediction:
    """Calibrated outputs for N rows: probabilities (N, 7) and (N, K), fused embedding (N, d),
    fusion weights (N, M) over ``modalities`` (MMEI: (N, M + 1), the last column its cross-modal summary)."""

    emotion_probs: np.ndarray
    intent_probs: np.ndarray
    embedding: np.ndarray
    fusion_weights: np.ndarray
    modalities: list[str]


class AffectModel:
    """An affect classifier over cached modality features.

    ``architecture``: ``"mmei"`` (:class:`MMEINetwork`), ``"mlp"`` (:class:`PooledMLPNetwork`; one modality =
    unimodal baseline, several = early fusion) or ``"mmei_paper"`` (:class:`MMEIPaperNetwork`, settings
    ``config.paper``; its text features are the token states entering the encoder's top ``config.paper.layers``
    layers, ``aigcrec.affect.tasks.paper_text_features``). ``dims``: modality -> (seq_dim, pooled_dim).
    """

    def __init__(self, architecture: str, dims: dict[str, tuple[int, int]], intents: list[str],
                 config: MMEIConfig | None = None, encoders: dict[str, Any] | None = None) -> None:
        if architecture not in ARCHITECTURES:
            raise ValueError(f"expected architecture in {ARCHITECTURES}, got {architecture!r}")
        if not dims:
            raise ValueError("expected at least one modality in dims, got none")
        self.architecture = architecture
        self.dims = {m: (int(a), int(b)) for m, (a, b) in dims.items()}
        self.intents = list(intents)
        self.config = config or MMEIConfig()
        self.encoders = dict(encoders or {})
        self.temperature = {"emotion": 1.0, "intent": 1.0}
        self.prior = {"emotion": np.full(7, 1 / 7), "intent": np.full(max(len(intents), 1), 1 / max(len(intents), 1))}
        self.history: list[dict[str, float]] = []  # one row per joint-training epoch
        self.stages: dict[str, Any] = {}  # MMEI: what unimodal pre-training and the residual gate chose
        self.net = self._build()

    def _build(self) -> nn.Module:
        c = self.config
        if self.architecture == "mmei":
            return MMEINetwork(self.dims, len(self.intents), c.width, c.heads, c.layers, c.dropout)
        if self.architecture == "mmei_paper":
            p = c.paper
            base = named_base(p.text_model)[1]
            n = base.config.num_hidden_layers
            if p.layers > n:
                raise ValueError(f"mmei.paper.layers: expected <= {n} (the text encoder's layers), got {p.layers}")
            return MMEIPaperNetwork(self.dims, len(self.intents), list(base.encoder.layer[n - p.layers:]),
                                    base.config, c.width, p.heads, c.dropout)
        return PooledMLPNetwork(self.dims, len(self.intents), c.width, c.dropout)

    @property
    def recipe(self) -> MMEIConfig:
        """The training settings: ``config``, with ``config.paper``'s epochs, batch size, learning rate and
        patience for ``mmei_paper``."""
        if self.architecture != "mmei_paper":
            return self.config
        p = self.config.paper
        return self.config.model_copy(update={"epochs": p.epochs, "batch_size": p.batch_size, "lr": p.lr,
                                              "patience": p.patience})

    @property
    def embedding_dim(self) -> int:
        """Width d of the fused embedding (``Prediction.embedding``: both networks end in ``config.width``)."""
        return int(self.config.width)

    @property
    def modalities(self) -> list[str]:
        return list(self.net.modalities)

    # ---- training -------------------------------------------------------------------------------------
    def _expert_logits(self, data: AffectData, batch_size: int = 256) -> torch.Tensor:
        """Per-modality expert logits (N, M, 7) in eval mode."""
        self.net.eval()
        with torch.inference_mode():
            return torch.cat([self.net.experts(_trim(to_batch(data, self.modalities,
                                                               np.arange(s, min(s + batch_size, len(data))))))
                              for s in range(0, len(data), batch_size)])

    def fit(self, train: AffectData, dev: AffectData | None = None, seed: int = 0) -> "AffectModel":
        """Train on ``train``; early-stop and calibrate on ``dev`` (a 10 % hold-out of train if None)."""
        return AffectTrainer(self).fit(train, dev, seed)

    # ---- inference ------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _forward(self, data: AffectData, batch_size: int = 256):
        self.net.eval()
        outs = []
        for start in range(0, len(data), batch_size):
            idx = np.arange(start, min(start + batch_size, len(data)))
            outs.append([t.numpy() for t in self.net(_trim(to_batch(data, self.modalities, idx)))[:4]])
        return [np.concatenate(parts) for parts in zip(*outs)]

    def _logits(self, data: AffectData) -> tuple[np.ndarray, np.ndarray]:
        e, i, _, _ = self._forward(data)
        return e, i

    def predict(self, data: AffectData) -> Prediction:
        """Calibrated probabilities; rows with none of this model's modalities get the training prior."""
        e, i, z, alpha = self._forward(data)
        pe = _softmax(e / self.temperature["emotion"])
        pi = _softmax(i / self.temperature["intent"])
        none = ~np.any([data.features[m].present for m in self.modalities], axis=0)
        pe[none], pi[none] = self.prior["emotion"], self.prior["intent"][: pi.shape[1]]
        return Prediction(pe, pi, z, alpha, self.modalities)

    # ---- persistence ----------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """``config.json`` (``aigcrec.saved``, component ``affect_model``: architecture, dims, intents, config,
        temperatures, priors) + ``weights.pt``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"architecture": self.architecture, "dims": self.dims, "intents": self.intents,
                "config": self.config.model_dump(), "encoders": self.encoders, "temperature": self.temperature,
                "prior": {k: v.tolist() for k, v in self.prior.items()}, "history": self.history,
                "stages": self.stages}
        write_config(d, "affect_model", FORMAT, meta, indent=2)
        torch.save(self.net.state_dict(), d / "weights.pt")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "AffectModel":
        d = Path(directory)
        meta, _, _ = read_config(d, "affect_model", FORMAT)  # model.json in folders saved before, still read
        model = cls(meta["architecture"], {m: tuple(v) for m, v in meta["dims"].items()}, meta["intents"],
                    MMEIConfig(**meta["config"]), meta.get("encoders"))
        model.net.load_state_dict(torch.load(d / "weights.pt", map_location="cpu", weights_only=True))
        model.net.eval()
        model.temperature = meta["temperature"]
        model.prior = {k: np.asarray(v) for k, v in meta["prior"].items()}
        model.history = meta.get("history", [])
        model.stages = meta.get("stages", {})
        return model


class MMEIModel(AffectModel):
    """MMEI: cross-modal transformer (text queries voice and face) with attention fusion and joint heads.

    ``encoders``: the ``EncoderConfig`` settings the features came from (saved so a predictor can rebuild them).
    Load a saved one with ``AffectModel.load(dir)``.
    """

    def __init__(self, dims: dict[str, tuple[int, int]], intents: list[str], config: MMEIConfig | None = None,
                 encoders: dict[str, Any] | None = None) -> None:
        super().__init__("mmei", dims, intents, config, encoders)


class LateFusion:
    """Mean of unimodal models' calibrated probabilities over the modalities present in each row."""

    def __init__(self, models: list[AffectModel]) -> None:
        self.models = models

    def predict(self, data: AffectData) -> Prediction:
        preds = [m.predict(data) for m in self.models]
        present = np.stack([data.features[m.modalities[0]].present for m in self.models], axis=1).astype(float)
        w = np.where(present.sum(1, keepdims=True) > 0, present, 1.0)  # (N, M)
        w = w / w.sum(1, keepdims=True)
        pe = sum(w[:, j:j + 1] * p.emotion_probs for j, p in enumerate(preds))
        pi = sum(w[:, j:j + 1] * p.intent_probs for j, p in enumerate(preds))
        z = np.concatenate([p.embedding for p in preds], axis=1)
        return Prediction(pe, pi, z, w, [m.modalities[0] for m in self.models])


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(1, keepdims=True)
