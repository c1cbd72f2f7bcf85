"""Peer implementations of DCN-V2 trained on exactly our split and sparse fields (benchmark only).

- ``deepctr_dcnmix``: DeepCTR-Torch 0.3.0 ``DCNMix`` trained by its own ``fit`` loop.
- ``fuxictr_dcnv2``: FuxiCTR 2.3.10 ships its layers and ``BaseModel`` but not the model zoo, so the
  DCNv2 model (embedding -> CrossNetMix ∥ MLP_Block -> Linear, as in FuxiCTR's model zoo) is assembled
  from its layers and trained with its ``BaseModel.train_step`` (Adam, gradient clipping at 10).

Both read the integer-encoded sparse fields of our ``FeatureSpec`` (same vocabularies, unknown = 0),
use the same embedding width, cross depth, rank, experts, DNN and dropout as our ``dcnv2`` variant, and
are early-stopped on the same validation AUC with the same ``TrainConfig.patience``. ``task="rating"``
trains them as regressions (MSE, linear output, early stopping on validation RMSE), for rating prediction. Their own
initialisers are kept (embeddings N(0, 1e-4²); our models use the same, see ``models.EMBEDDING_INIT_STD``). Imports stay inside the functions: tests never need them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch

from aigcrec.ranking.config import ModelConfig, TrainConfig
from aigcrec.ranking.features import FeatureSpec
from aigcrec.metrics import auc

PEERS = ("deepctr_dcnmix", "fuxictr_dcnv2")


def _columns(spec: FeatureSpec) -> list[tuple[str, int]]:
    if spec.tags or spec.dense:
        raise ValueError("peer models here take sparse fields only; got tags/numeric fields "
                         f"{[f.name for f in spec.tags + spec.dense]}")
    return [(f.name, spec.cardinality(f)) for f in spec.sparse]


def val_score(y: np.ndarray, p: np.ndarray, task: str) -> float:
    """Validation score, larger is better: AUC (ctr) or -RMSE (rating)."""
    return auc(y, p) if task == "ctr" else -float(np.sqrt(np.mean((np.asarray(p) - y) ** 2)))


def _early_stopped(train_epoch, predict_val, y_val, state, load, cfg: TrainConfig, task: str = "ctr"
                   ) -> tuple[int, float, int]:
    """Run epochs until the validation score (``val_score``) stops improving; restore the best state.

    Returns (epochs run, seconds spent in ``train_epoch``, best epoch).
    """
    best, best_epoch, best_state, stale, busy, epochs = -np.inf, 0, copy.deepcopy(state()), 0, 0.0, 0
    for epoch in range(cfg.max_epochs):
        busy += train_epoch()
        epochs += 1
        val = val_score(y_val, predict_val(), task)
        if val > best:
            best, best_epoch, best_state, stale = val, epoch, copy.deepcopy(state()), 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    load(best_state)
    return epochs, busy, best_epoch


def run_deepctr(spec: FeatureSpec, parts, labels, mcfg: ModelConfig, tcfg: TrainConfig, seed: int,
                task: str = "ctr") -> dict:
    """Train DeepCTR-Torch DCNMix; return test probabilities (ratings for ``task="rating"``) and throughput."""
    from deepctr_torch.inputs import SparseFeat
    from deepctr_torch.models import DCNMix

    cols = _columns(spec)
    feats = [SparseFeat(name, vocabulary_size=card, embedding_dim=mcfg.embedding_dim) for name, card in cols]
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = DCNMix(feats, feats, cross_num=mcfg.cross_layers, dnn_hidden_units=tuple(mcfg.dnn_units),
                       low_rank=mcfg.low_rank, num_experts=mcfg.num_experts, dnn_dropout=mcfg.dropout,
                       l2_reg_linear=0.0, l2_reg_embedding=0.0, l2_reg_cross=0.0, l2_reg_dnn=0.0,
                       seed=seed, task="binary" if task == "ctr" else "regression", device="cpu")
    model.compile(torch.optim.Adam(model.parameters(), lr=tcfg.lr), "binary_crossentropy" if task == "ctr" else "mse")

    def x(part):
        return {name: parts[part].cat[:, j] for j, (name, _) in enumerate(cols)}

    xtr, xva = x("train"), x("val")

    def train_epoch() -> float:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per call on stdout
            model.fit(xtr, labels["train"], batch_size=tcfg.batch_size, epochs=1, verbose=0)
        return time.perf_counter() - t0

    epochs, busy, best_epoch = _early_stopped(
        train_epoch, lambda: model.predict(xva, batch_size=8192).reshape(-1), labels["val"],
        model.state_dict, model.load_state_dict, tcfg, task)
    probs = model.predict(x("test"), batch_size=8192).reshape(-1)
    return {"probs": probs, "train_samples_per_s": epochs * len(labels["train"]) / busy, "best_epoch": best_epoch}


def _fuxictr_model(spec: FeatureSpec, mcfg: ModelConfig, root: str, task: str = "ctr"):
    from fuxictr.features import FeatureMap
    from fuxictr.pytorch.layers import CrossNetMix, FeatureEmbedding, MLP_Block
    from fuxictr.pytorch.models import BaseModel

    fmap = FeatureMap("aigcrec_bench", root)
    fmap.features = OrderedDict((name, {"type": "categorical", "vocab_size": card, "source": ""})
                                for name, card in _columns(spec))
    fmap.labels = ["label"]
    fmap.num_fields = len(fmap.features)
    fmap.set_column_index()

    class DCNv2(BaseModel):
        """FuxiCTR's DCNv2 (parallel structure, low-rank mixture) from FuxiCTR layers."""

        def __init__(self) -> None:
            super().__init__(fmap, model_id="DCNv2", gpu=-1, verbose=0, model_root=root, metrics=["AUC"],
                             task="binary_classification" if task == "ctr" else "regression")
            self.embedding_layer = FeatureEmbedding(fmap, mcfg.embedding_dim)
            in_dim = fmap.num_fields * mcfg.embedding_dim
            self.crossnet = CrossNetMix(in_dim, mcfg.cross_layers, mcfg.low_rank, mcfg.num_experts)
            self.parallel_dnn = MLP_Block(in_dim, hidden_units=list(mcfg.dnn_units), hidden_activations="ReLU",
                                          dropout_rates=mcfg.dropout)
            self.fc = torch.nn.Linear(in_dim + mcfg.dnn_units[-1], 1)
            self.reset_parameters()
            self.model_to_device()

        def forward(self, inputs):
            x = self.get_inputs(inputs)
            flat = self.embedding_layer(x, flatten_emb=True)  # (B, F*d)
            logit = self.fc(torch.cat([self.crossnet(flat), self.parallel_dnn(flat)], dim=-1))
            return {"y_pred": self.output_activation(logit)}

    return DCNv2()


def run_fuxictr(spec: FeatureSpec, parts, labels, mcfg: ModelConfig, tcfg: TrainConfig, seed: int,
                task: str = "ctr") -> dict:
    """Train FuxiCTR DCNv2 with its ``train_step``; return test probabilities (ratings for ``task="rating"``)
    and throughput."""
    from fuxictr.pytorch.torch_utils import seed_everything

    seed_everything(seed)
    cols = _columns(spec)
    with tempfile.TemporaryDirectory() as root:
        model = _fuxictr_model(spec, mcfg, root, task)
        model.compile("adam", "binary_crossentropy" if task == "ctr" else "mse_loss", tcfg.lr)  # torch F names
        model._max_gradient_norm = 10.0
        tensors = {p: {name: torch.from_numpy(np.ascontiguousarray(parts[p].cat[:, j])) for j, (name, _) in enumerate(cols)}
                   for p in ("train", "val", "test")}
        ytr = torch.from_numpy(labels["train"].astype(np.float32))
        gen = torch.Generator().manual_seed(seed)
        n = len(ytr)

        def train_epoch() -> float:
            model.train()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, tcfg.batch_size):
                rows = perm[start:start + tcfg.batch_size]
                batch = {k: v.index_select(0, rows) for k, v in tensors["train"].items()}
                batch["label"] = ytr.index_select(0, rows)
                model.train_step(batch)
            return time.perf_counter() - t0

        @torch.no_grad()
        def predict(part: str) -> np.ndarray:
            model.eval()
            m = len(next(iter(tensors[part].values())))
            out = [model.forward({k: v[s:s + 8192] for k, v in tensors[part].items()})["y_pred"].reshape(-1)
                   for s in range(0, m, 8192)]
            return torch.cat(out).numpy()

        epochs, busy, best_epoch = _early_stopped(train_epoch, lambda: predict("val"), labels["val"],
                                                  model.state_dict, model.load_state_dict, tcfg, task)
        probs = predict("test")
    return {"probs": probs, "train_samples_per_s": epochs * n / busy, "best_epoch": best_epoch}


RUNNERS = {"deepctr_dcnmix": run_deepctr, "fuxictr_dcnv2": run_fuxictr}
