"""Training: mini-batches sliced from precomputed tensors, Adam, BCE, early stopping on validation AUC.

``fit`` keeps the best epoch's weights (by validation AUC) and reports the training throughput
(samples per second over the optimisation steps only, evaluation excluded). ``objective="mse"`` trains
the logit as a regression output instead (rating prediction; early stopping on validation RMSE, reported
as ``best_val_auc`` = -RMSE so that larger is better either way).

Content profiles: a history profile h_k (the mean of a frozen table's rows over the user's earlier positive
items) depends on the data alone, so ``with_profiles`` computes it once per *distinct* history of a
dataset (``Ranker.history_profile``, the serving path) and a batch reads its rows by index; the model then
applies ``p_k = ReLU(V_k h_k + c_k)`` to (B, d) inputs instead of pooling B x L history rows per step
(docs/ranking.md, "Training throughput").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from aigcrec.ranking.config import TrainConfig
from aigcrec.ranking.features import EncodedBatch, split_history_key
from aigcrec.metrics import auc
from aigcrec.ranking.models import Ranker
from aigcrec.training import fit_loop, module_state

log = logging.getLogger("aigcrec.ranking")


PROFILE = "profile:"  # "profile:<history key>": (P, d) raw profiles of a dataset's distinct histories (not sliced)
STATE = "state:"  # "state:<history key>": (N,) row of each sample's history in that table
PROFILE_CHUNK = 4096  # distinct histories pooled at a time by ``with_profiles``


def to_tensors(enc: EncodedBatch) -> dict[str, torch.Tensor]:
    """Numpy inputs to tensors once (``idx:<name>`` holds vector-table rows)."""
    out = {"cat": torch.as_tensor(enc.cat), "tags": torch.as_tensor(enc.tags), "num": torch.as_tensor(enc.num)}
    out.update({f"idx:{k}": torch.as_tensor(np.array(v)) for k, v in enc.vec_idx.items()})
    return out


@torch.no_grad()
def with_profiles(model: Ranker, data: dict[str, torch.Tensor], budget_mb: float = TrainConfig().profile_cache_mb
                  ) -> dict[str, torch.Tensor]:
    """``data`` with the model's history profiles precomputed once instead of pooled in every batch.

    For each history key whose table is frozen, the rows ``idx:<key>`` (N, L) become ``state:<key>`` (N,), an
    index into ``profile:<key>`` (P, d): the raw profile ``h_k`` (``Ranker.history_profile``) of each of the P
    distinct histories. Unchanged when no key qualifies or the profiles would take more than ``budget_mb``.
    """
    keys = [k for k in model.history_keys if f"idx:{k}" in data
            and not model.tables[split_history_key(k)[1]].weight.requires_grad]
    if not keys:
        return data
    widths = [data[f"idx:{k}"].shape[1] for k in keys]
    dims = [model.tables[split_history_key(k)[1]].embedding_dim for k in keys]
    states, inverse = torch.unique(torch.cat([data[f"idx:{k}"] for k in keys], dim=1), dim=0, return_inverse=True)
    need_mb = states.shape[0] * sum(dims) * 4 / 2 ** 20  # float32
    if need_mb > budget_mb:
        log.info("content profiles: %d distinct histories need %.0f MiB (> profile_cache_mb %.0f): pooled per batch",
                 states.shape[0], need_mb, budget_mb)
        return data
    out = {k: v for k, v in data.items() if k not in {f"idx:{key}" for key in keys}}
    for key, rows in zip(keys, torch.split(states, widths, dim=1)):  # rows (P, L) of this key's table
        out[f"{STATE}{key}"] = inverse
        out[f"{PROFILE}{key}"] = torch.cat([model.history_profile(key, rows[s:s + PROFILE_CHUNK])
                                            for s in range(0, rows.shape[0], PROFILE_CHUNK)])  # (P, d)
    return out


def make_batch(model: Ranker, data: dict[str, torch.Tensor], rows: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Slice rows (all when None) and look up the model's vector fields (precomputed profiles by index)."""
    part = {k: (v if rows is None or k.startswith(PROFILE) else v.index_select(0, rows)) for k, v in data.items()}
    batch = {k: part[k] for k in ("cat", "tags", "num")}
    batch.update(model.lookup({name: part[f"idx:{name}"] for name in model.vector_inputs if f"idx:{name}" in part}))
    for key in model.history_keys:
        if f"{PROFILE}{key}" in part:
            batch[key] = part[f"{PROFILE}{key}"].index_select(0, part[f"{STATE}{key}"])  # (B, d)
    return batch


@torch.no_grad()
def predict(model: Ranker, enc: EncodedBatch | dict[str, torch.Tensor], batch_size: int = 8192,
            with_weights: bool = False, raw: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Probabilities (N,) (raw outputs with ``raw``; and modality weights (N, M) with ``with_weights``).

    ``enc``: encoded rows, or tensors from ``to_tensors`` (``with_profiles`` applied or not)."""
    data = with_profiles(model, to_tensors(enc)) if isinstance(enc, EncodedBatch) else enc
    n = data["cat"].shape[0]
    model.eval()
    probs, weights = [], []
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(n, start + batch_size))
        logit, alpha = model.forward_with_weights(make_batch(model, data, rows))
        probs.append(logit if raw else torch.sigmoid(logit))
        weights.append(alpha)
    p = torch.cat(probs).numpy() if probs else np.zeros(0, np.float32)
    if with_weights:
        return p, (torch.cat(weights).numpy() if weights else np.zeros((0, len(model.modality_names)), np.float32))
    return p


@dataclass
class FitResult:
    """What ``fit`` learned: the best epoch, the validation AUC per epoch and the throughput."""

    best_epoch: int
    best_val_auc: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_samples_per_s: float = 0.0
    train_seconds: float = 0.0


def fit(model: Ranker, train: EncodedBatch, y_train: np.ndarray, val: EncodedBatch, y_val: np.ndarray,
        cfg: TrainConfig, seed: int = 0, on_epoch=None, objective: str = "bce") -> FitResult:
    """Train ``model`` in place; restore the weights of the epoch with the best validation AUC.

    ``on_epoch(epoch, metrics)`` is called after each epoch (progress bars). Items' id fields flagged
    ``id_dropout`` are replaced by the unknown index with probability ``cfg.id_dropout``.
    """
    if len(train) != len(y_train) or len(val) != len(y_val):
        raise ValueError(f"inputs and labels differ in length: train {len(train)} vs {len(y_train)}, "
                         f"val {len(val)} vs {len(y_val)}")
    if len(train) == 0:
        raise ValueError("no training rows")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data, y = with_profiles(model, to_tensors(train), cfg.profile_cache_mb), torch.as_tensor(np.asarray(y_train, np.float32))
    val_data = with_profiles(model, to_tensors(val), cfg.profile_cache_mb)
    drop_cols = torch.tensor([j for j, f in enumerate(model.spec.sparse) if f.id_dropout], dtype=torch.long)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)  # one kernel per tensor
    if objective not in ("bce", "mse"):
        raise ValueError(f"objective: expected 'bce' or 'mse', got {objective!r}")
    loss_fn = nn.BCEWithLogitsLoss() if objective == "bce" else nn.MSELoss()

    def val_score(out: np.ndarray) -> float:  # larger is better
        return auc(y_val, out) if objective == "bce" else -float(np.sqrt(np.mean((out - y_val) ** 2)))

    n, size = len(train), cfg.batch_for(len(train))

    def batches(epoch: int):
        perm = torch.randperm(n, generator=gen)
        return (perm[start:start + size] for start in range(0, n, size))

    def loss(rows: torch.Tensor) -> torch.Tensor:
        batch = make_batch(model, data, rows)
        if cfg.id_dropout > 0 and drop_cols.numel():
            cat = batch["cat"].clone()
            drop = torch.rand(cat.shape[0], drop_cols.numel(), generator=gen) < cfg.id_dropout
            cat[:, drop_cols] = cat[:, drop_cols].masked_fill(drop, 0)
            batch["cat"] = cat
        return loss_fn(model(batch), y.index_select(0, rows))

    history: list[dict[str, float]] = []

    def record(e) -> None:
        row = {"epoch": e.epoch, "train_loss": e.train_loss, "val_auc": e.metrics["val_auc"]}
        history.append(row)
        log.debug("epoch %d: %s", e.epoch, row)
        if on_epoch is not None:
            on_epoch(e.epoch, row)

    run = fit_loop(epochs=cfg.max_epochs, batches=batches, loss=loss, size=len, optimizer=opt,
                   before_epoch=model.train,
                   evaluate=lambda: {"val_auc": val_score(predict(model, val_data, raw=objective == "mse"))},
                   monitor="val_auc", patience=cfg.patience, state=module_state(model), on_epoch=record)
    model.eval()
    busy = run.train_seconds
    return FitResult(best_epoch=run.best_epoch, best_val_auc=run.best_score, history=history,
                     train_samples_per_s=run.rows_seen / busy if busy > 0 else 0.0, train_seconds=busy)


class Popularity:
    """The item's training click rate, smoothed toward the global rate: ``(clicks + k·p̄) / (views + k)``."""

    def __init__(self, smoothing: float = 10.0) -> None:
        self.smoothing = smoothing
        self.rates: dict[str, float] = {}
        self.prior = 0.5

    def fit(self, item_ids: pd.Series, labels: np.ndarray) -> "Popularity":
        df = pd.DataFrame({"item": item_ids.astype(str).to_numpy(), "y": np.asarray(labels, np.float64)})
        self.prior = float(df["y"].mean())
        g = df.groupby("item")["y"].agg(["sum", "count"])
        self.rates = ((g["sum"] + self.smoothing * self.prior) / (g["count"] + self.smoothing)).to_dict()
        return self

    def predict(self, item_ids: pd.Series) -> np.ndarray:
        return item_ids.astype(str).map(self.rates).fillna(self.prior).to_numpy(np.float64)
