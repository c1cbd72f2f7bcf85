"""``AffectModel`` (fit / predict / save / load) around an affect network; ``MMEIModel`` is the MMEI one.

Training (DESIGN.md section 2, MMEI): class-weighted CE_e + lambda * CE_i (unknown labels, -1, are
skipped), modality dropout (each present modality dropped with probability p, at least one kept),
AdamW, early stopping on dev NLL; then one temperature per head fitted on dev:
T* = argmin_T NLL(softmax(logits / T), y).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aigcrec.affect.config import MMEIConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.networks import MMEINetwork, PooledMLPNetwork

log = logging.getLogger("aigcrec.affect")

ARCHITECTURES = ("mmei", "mlp")


@dataclass
class Prediction:
    """Calibrated outputs for N rows: probabilities (N, 7) and (N, K), fused embedding (N, d),
    fusion weights (N, M) over ``modalities`` (MMEI: (N, M + 1), the last column its cross-modal summary)."""

    emotion_probs: np.ndarray
    intent_probs: np.ndarray
    embedding: np.ndarray
    fusion_weights: np.ndarray
    modalities: list[str]


def to_batch(data: AffectData, modalities: list[str], idx: np.ndarray | None = None) -> dict:
    """Torch tensors of ``data`` rows ``idx`` for ``modalities`` (absent ones are all-missing placeholders)."""
    out = {}
    for m in modalities:
        enc = data.features.get(m)
        if enc is None:
            raise ValueError(f"the model needs {m} features, the data has only {sorted(data.features)}")
        if idx is not None:
            enc = enc.take(idx)
        out[m] = {"seq": torch.from_numpy(np.ascontiguousarray(enc.seq, dtype=np.float32)),
                  "mask": torch.from_numpy(enc.mask.astype(bool)),
                  "pooled": torch.from_numpy(np.ascontiguousarray(enc.pooled, dtype=np.float32)),
                  "present": torch.from_numpy(enc.present.astype(bool))}
    return out


def _trim(batch: dict) -> dict:
    """Cut each modality's padding to the longest real sequence in the batch (speed)."""
    for b in batch.values():
        length = max(1, int(b["mask"].any(0).nonzero().max().item()) + 1) if b["mask"].any() else 1
        b["seq"], b["mask"] = b["seq"][:, :length], b["mask"][:, :length]
    return batch


def modality_dropout(batch: dict, p: float, gen: torch.Generator) -> dict:
    """Drop each present modality with probability p, keeping at least one present modality per row."""
    mods = list(batch)
    present = torch.stack([batch[m]["present"] for m in mods], dim=1)  # (B, M)
    drop = (torch.rand(present.shape, generator=gen) < p) & present
    lost = ~(present & ~drop).any(1) & present.any(1)  # rows that would lose everything
    if lost.any():
        keep = torch.multinomial(present[lost].float(), 1, generator=gen).squeeze(-1)  # one present modality
        drop[lost] = drop[lost].scatter(1, keep[:, None], False)
    for j, m in enumerate(mods):
        batch[m] = {**batch[m], "present": present[:, j] & ~drop[:, j]}
    return batch


def _unimodal_loss(u: torch.Tensor, batch: dict, modalities: list[str], y: torch.Tensor,
                   weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over modalities of CE(u_m, y) on rows where modality m is present and y is known.

    u: (B, M, 7) per-modality emotion logits in ``modalities`` order."""
    losses = []
    for j, m in enumerate(modalities):
        rows = batch[m]["present"] & (y >= 0)
        if rows.any():
            losses.append(nn.functional.cross_entropy(u[rows, j], y[rows], weight=weight))
    return torch.stack(losses).mean() if losses else u.sum() * 0.0


def class_weights(y: np.ndarray, n: int) -> torch.Tensor:
    """Balanced weights w_c = N / (C * N_c) over known labels (absent classes get weight 1)."""
    y = y[y >= 0]
    counts = np.bincount(y, minlength=n).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n * np.maximum(counts, 1)), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of softmax(logits / T) on labelled rows (1.0 if none)."""
    known = y >= 0
    if known.sum() < 2:
        return 1.0
    z = torch.from_numpy(logits[known]).double()
    t = torch.from_numpy(y[known]).long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(np.exp(log_t.item()), 0.05, 20.0))


class AffectModel:
    """An affect classifier over cached modality features.

    ``architecture``: ``"mmei"`` (:class:`MMEINetwork`) or ``"mlp"`` (:class:`PooledMLPNetwork`; one modality =
    unimodal baseline, several = early fusion). ``dims``: modality -> (seq_dim, pooled_dim).
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
        self.history: list[dict[str, float]] = []
        self.net = self._build()

    def _build(self) -> nn.Module:
        c = self.config
        if self.architecture == "mmei":
            return MMEINetwork(self.dims, len(self.intents), c.width, c.heads, c.layers, c.dropout)
        return PooledMLPNetwork(self.dims, len(self.intents), c.width, c.dropout)

    @property
    def modalities(self) -> list[str]:
        return list(self.net.modalities)

    # ---- training -------------------------------------------------------------------------------------
    def _fit_standardizers(self, data: AffectData) -> None:
        for m, (norm_seq, norm_pooled) in self.net.standardizers().items():
            enc = data.features[m]
            norm_pooled.fit(torch.from_numpy(enc.pooled[enc.present].astype(np.float32)))
            if norm_seq is not None:
                real = enc.mask & enc.present[:, None]
                norm_seq.fit(torch.from_numpy(enc.seq[real].astype(np.float32)))

    def fit(self, train: AffectData, dev: AffectData | None = None, seed: int = 0) -> "AffectModel":
        """Train on ``train``; early-stop and calibrate on ``dev`` (a 10 % hold-out of train if None)."""
        c = self.config
        if len(train) == 0:
            raise ValueError("expected training rows, got an empty AffectData")
        rng = np.random.default_rng(seed)
        if dev is None:
            perm = rng.permutation(len(train))
            cut = max(1, len(train) // 10)
            dev, train = train.take(perm[:cut]), train.take(perm[cut:])
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(c.threads)
        try:
            self._fit_loop(train, dev, rng, gen)
        finally:
            torch.set_num_threads(threads)
        self._calibrate(dev)
        for head, y in (("emotion", train.emotion), ("intent", train.intent)):
            n = len(self.prior[head])
            known = y[y >= 0]
            if len(known):
                self.prior[head] = (np.bincount(known, minlength=n) + 1.0) / (len(known) + n)
        return self

    def _fit_loop(self, train: AffectData, dev: AffectData, rng: np.random.Generator, gen: torch.Generator) -> None:
        c = self.config
        self._fit_standardizers(train)
        w_e = class_weights(train.emotion, 7) if c.class_weighted else None
        w_i = class_weights(train.intent, len(self.intents)) if c.class_weighted and self.intents else None
        ce_e = nn.CrossEntropyLoss(weight=w_e, ignore_index=-1)
        ce_i = nn.CrossEntropyLoss(weight=w_i, ignore_index=-1)
        y_e, y_i = torch.from_numpy(train.emotion.astype(np.int64)), torch.from_numpy(train.intent.astype(np.int64))
        opt = torch.optim.AdamW(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=c.lr, total_steps=c.epochs * max(
            1, -(-len(train) // c.batch_size)), pct_start=0.1)
        has_e, has_i = (train.emotion >= 0).any(), (train.intent >= 0).any() and bool(self.intents)
        best, best_state, bad = float("inf"), None, 0
        for epoch in range(c.epochs):
            self.net.train()
            perm = rng.permutation(len(train))
            total = 0.0
            for start in range(0, len(perm), c.batch_size):
                idx = perm[start:start + c.batch_size]
                batch = modality_dropout(_trim(to_batch(train, self.modalities, idx)), c.modality_dropout, gen)
                out = self.net(batch)
                e, i = out.emotion, out.intent
                loss = torch.zeros(())
                if has_e and (y_e[idx] >= 0).any():
                    loss = loss + ce_e(e, y_e[idx])
                    if out.unimodal is not None and c.aux_weight > 0:
                        loss = loss + c.aux_weight * _unimodal_loss(out.unimodal, batch, self.modalities,
                                                                    y_e[idx], w_e)
                if has_i and (y_i[idx] >= 0).any():
                    loss = loss + c.intent_weight * ce_i(i, y_i[idx])
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            dev_nll = self._dev_nll(dev)
            self.history.append({"epoch": epoch + 1, "train_loss": total / len(train), "dev_nll": dev_nll})
            log.debug("epoch %d train %.4f dev nll %.4f", epoch + 1, total / len(train), dev_nll)
            if dev_nll < best - 1e-4:
                best, best_state, bad = dev_nll, copy.deepcopy(self.net.state_dict()), 0
            else:
                bad += 1
                if bad >= c.patience:
                    break
        if best_state is not None:
            self.net.load_state_dict(best_state)

    def _dev_nll(self, dev: AffectData) -> float:
        e, i = self._logits(dev)
        total = 0.0
        for logits, y in ((e, dev.emotion), (i, dev.intent)):
            known = y >= 0
            if known.any() and logits.shape[1] > 1:
                total += float(nn.functional.cross_entropy(torch.from_numpy(logits[known]),
                                                           torch.from_numpy(y[known].astype(np.int64))))
        return total

    def _calibrate(self, dev: AffectData) -> None:
        e, i = self._logits(dev)
        self.temperature = {"emotion": fit_temperature(e, dev.emotion), "intent": fit_temperature(i, dev.intent)}
        log.debug("temperatures %s", self.temperature)

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
        """``model.json`` (architecture, dims, intents, config, temperatures, priors) + ``weights.pt``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"architecture": self.architecture, "dims": self.dims, "intents": self.intents,
                "config": self.config.model_dump(), "encoders": self.encoders, "temperature": self.temperature,
                "prior": {k: v.tolist() for k, v in self.prior.items()}, "history": self.history}
        (d / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        torch.save(self.net.state_dict(), d / "weights.pt")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "AffectModel":
        d = Path(directory)
        if not (d / "model.json").is_file():
            raise FileNotFoundError(f"expected a saved affect model (model.json, weights.pt) in {d}")
        meta: dict[str, Any] = json.loads((d / "model.json").read_text(encoding="utf-8"))
        model = cls(meta["architecture"], {m: tuple(v) for m, v in meta["dims"].items()}, meta["intents"],
                    MMEIConfig(**meta["config"]), meta.get("encoders"))
        model.net.load_state_dict(torch.load(d / "weights.pt", map_location="cpu", weights_only=True))
        model.net.eval()
        model.temperature = meta["temperature"]
        model.prior = {k: np.asarray(v) for k, v in meta["prior"].items()}
        model.history = meta.get("history", [])
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
