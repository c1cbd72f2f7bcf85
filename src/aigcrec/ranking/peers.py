"""Peer implementations of DCN-V2 trained on exactly our split and sparse fields (benchmark only).

- ``deepctr_dcnmix``: DeepCTR-Torch 0.3.0 ``DCNMix`` trained by its own ``fit`` loop.
- ``fuxictr_<name>`` for the UMAIR-FPS authors' eight baselines (``FUXICTR_MODELS``: DeepFM, xDeepFM, DCN,
  DCNv2, DIFM, EDCN, FiBiNET, FinalMLP): FuxiCTR 2.3.10 ships its layers and ``BaseModel`` but not the model
  zoo, so each model is assembled from its layers after the zoo's code (``_fuxictr_model`` says which parts
  are written here) and trained with its ``BaseModel.train_step`` (Adam, gradient clipping at 10).
  ``PEERS`` (``--peers``) are DeepCTR-Torch DCNMix and FuxiCTR DCNv2; ``ALL_PEERS`` (``--peers all``) all nine.

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
    from deepctr_torch.inputs import SparseFeat  # lazy: a peer library of the bench extra
    from deepctr_torch.models import DCNMix  # lazy: a peer library of the bench extra

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
            model.fit(xtr, labels["train"], batch_size=tcfg.batch_for(len(labels["train"])), epochs=1, verbose=0)
        return time.perf_counter() - t0

    epochs, busy, best_epoch = _early_stopped(
        train_epoch, lambda: model.predict(xva, batch_size=8192).reshape(-1), labels["val"],
        model.state_dict, model.load_state_dict, tcfg, task)
    probs = model.predict(x("test"), batch_size=8192).reshape(-1)
    return {"probs": probs, "train_samples_per_s": epochs * len(labels["train"]) / busy, "best_epoch": best_epoch}


FUXICTR_MODELS = ("deepfm", "xdeepfm", "dcn", "dcnv2", "difm", "edcn", "fibinet", "finalmlp")


def _fuxictr_model(spec: FeatureSpec, mcfg: ModelConfig, root: str, task: str = "ctr", name: str = "dcnv2"):
    """FuxiCTR model ``name`` (``FUXICTR_MODELS``) on the sparse fields of ``spec``, as a FuxiCTR ``BaseModel``.

    FuxiCTR 2.3.10 ships the layers, not the model zoo, so each model is assembled here after the zoo's
    ``forward`` (FuxiCTR's default hyper-parameters where ours have no counterpart; ours otherwise:
    embedding width, DNN units and dropout, cross depth, rank and experts). E = (B, F, d) field embeddings,
    x = flatten(E) (B, F·d):

    - deepfm: ``FM(X, E) + MLP(x)`` (FM = LR + Σ_{i<j} <e_i, e_j>);
    - xdeepfm: ``LR(X) + CIN_[16, 16](E) + MLP(x)``;
    - dcn: ``Linear([CrossNet(x); MLP(x)])`` (parallel);
    - dcnv2: ``Linear([CrossNetMix(x); MLP(x)])`` (parallel, low-rank mixture);
    - fibinet: ``LR(X) + MLP([Bilinear(E); Bilinear(SENet(E))])`` (field-interaction bilinear, reduction 3);
    - difm: ``m = W_v flatten(SelfAtt(E)) + W_b MLP(x)`` (B, F) reweights each field's LR weight and
      embedding, ``Σ_i m_i w_i + b + FM(m ⊙ E)`` (one head, d-wide, residual, ReLU; written here: the
      release has no multi-head self-attention layer);
    - edcn: cross layer ∥ dense layer per depth, joined by a Hadamard bridge and field-wise softmax
      regulation gates (temperature 1) before the next depth, ``Linear([c_L; d_L; b_L])`` (bridge and
      regulation modules written here);
    - finalmlp: two MLPs over gated copies of x (feature selection: ``2·sigmoid(MLP_[64](bias))``), fused by
      the bilinear ``InteractionAggregation`` (one head) (both written here).
    """
    from fuxictr.features import FeatureMap  # lazy: a peer library of the dev/bench extras
    # lazy: a peer library of the dev/bench extras
    from fuxictr.pytorch.layers import (BilinearInteraction, CompressedInteractionNet, CrossInteraction, CrossNet,
                                        CrossNetMix, FactorizationMachine, FeatureEmbedding,
                                        InnerProductInteraction, LogisticRegression, MLP_Block,
                                        ScaledDotProductAttention, SqueezeExcitation)
    from fuxictr.pytorch.models import BaseModel  # lazy: a peer library of the dev/bench extras

    if name not in FUXICTR_MODELS:
        raise ValueError(f"unknown FuxiCTR model {name!r}; expected one of {list(FUXICTR_MODELS)}")
    fmap = FeatureMap("aigcrec_bench", root)
    fmap.features = OrderedDict((col, {"type": "categorical", "vocab_size": card, "source": ""})
                                for col, card in _columns(spec))
    fmap.labels = ["label"]
    fmap.num_fields = len(fmap.features)
    fmap.set_column_index()
    f, d = fmap.num_fields, mcfg.embedding_dim
    in_dim, units, drop = f * d, list(mcfg.dnn_units), mcfg.dropout

    def mlp(in_features: int, out: int | None = 1, hidden: list[int] | None = None) -> torch.nn.Module:
        return MLP_Block(in_features, hidden_units=units if hidden is None else hidden, hidden_activations="ReLU",
                         output_dim=out, dropout_rates=drop)

    class Model(BaseModel):
        """One FuxiCTR model (see ``_fuxictr_model``)."""

        def __init__(self) -> None:
            super().__init__(fmap, model_id=name, gpu=-1, verbose=0, model_root=root, metrics=["AUC"],
                             task="binary_classification" if task == "ctr" else "regression")
            self.embedding_layer = FeatureEmbedding(fmap, d)
            if name == "dcnv2":  # built in this order since the first version (same initial weights per seed)
                self.crossnet = CrossNetMix(in_dim, mcfg.cross_layers, mcfg.low_rank, mcfg.num_experts)
                self.parallel_dnn = mlp(in_dim, None)
                self.fc = torch.nn.Linear(in_dim + units[-1], 1)
            elif name == "dcn":
                self.crossnet = CrossNet(in_dim, mcfg.cross_layers)
                self.parallel_dnn = mlp(in_dim, None)
                self.fc = torch.nn.Linear(in_dim + units[-1], 1)
            elif name == "deepfm":
                self.fm = FactorizationMachine(fmap)
                self.dnn = mlp(in_dim)
            elif name == "xdeepfm":
                self.lr = LogisticRegression(fmap)
                self.cin = CompressedInteractionNet(f, [16, 16], output_dim=1)
                self.dnn = mlp(in_dim)
            elif name == "fibinet":
                self.lr = LogisticRegression(fmap)
                self.senet = SqueezeExcitation(f, reduction_ratio=3)
                self.bilinear = BilinearInteraction(f, d, "field_interaction")
                self.dnn = mlp(f * (f - 1) * d)
            elif name == "difm":
                self.lr_emb = FeatureEmbedding(fmap, 1)
                self.bias = torch.nn.Parameter(torch.zeros(1))
                self.qkvr = torch.nn.Linear(d, 4 * d, bias=False)
                self.att = ScaledDotProductAttention()
                self.bit = mlp(in_dim, None)
                self.m_vec, self.m_bit = torch.nn.Linear(in_dim, f), torch.nn.Linear(units[-1], f)
                self.fm = InnerProductInteraction(f, output="product_sum")
            elif name == "edcn":
                depth = max(1, mcfg.cross_layers)
                self.cross = torch.nn.ModuleList([CrossInteraction(in_dim) for _ in range(depth)])
                self.dense = torch.nn.ModuleList([mlp(in_dim, None, [in_dim]) for _ in range(depth)])
                self.gates = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2, f)) for _ in range(depth)])
                self.fc = torch.nn.Linear(3 * in_dim, 1)
            else:  # finalmlp
                self.fs_bias = torch.nn.Parameter(torch.zeros(2, d))
                self.fs_gate = torch.nn.ModuleList([MLP_Block(d, hidden_units=[64], hidden_activations="ReLU",
                                                              output_dim=in_dim, output_activation="Sigmoid")
                                                    for _ in range(2)])
                self.mlp1, self.mlp2 = mlp(in_dim, None), mlp(in_dim, None)
                h = units[-1]
                self.w_x, self.w_y = torch.nn.Linear(h, 1), torch.nn.Linear(h, 1)
                self.w_xy = torch.nn.Parameter(torch.empty(h * h, 1))
                torch.nn.init.xavier_normal_(self.w_xy)
            self.reset_parameters()
            self.model_to_device()

        def _regulate(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """EDCN regulation: field-wise softmax gates g (2, F) -> (g_c ⊙ x, g_d ⊙ x), each (B, F·d)."""
            g = torch.softmax(self.gates[i], dim=-1).repeat_interleave(d, dim=-1)  # (2, F·d)
            return x * g[0], x * g[1]

        def forward(self, inputs):
            x = self.get_inputs(inputs)
            emb = self.embedding_layer(x)  # (B, F, d)
            flat = emb.flatten(1)  # (B, F·d)
            if name in ("dcnv2", "dcn"):
                logit = self.fc(torch.cat([self.crossnet(flat), self.parallel_dnn(flat)], dim=-1))
            elif name == "deepfm":
                logit = self.fm(x, emb) + self.dnn(flat)
            elif name == "xdeepfm":
                logit = self.lr(x) + self.cin(emb) + self.dnn(flat)
            elif name == "fibinet":
                pairs = torch.cat([self.bilinear(emb), self.bilinear(self.senet(emb))], dim=1)  # (B, F(F-1), d)
                logit = self.lr(x) + self.dnn(pairs.flatten(1))
            elif name == "difm":
                q, k, v, r = self.qkvr(emb).chunk(4, dim=-1)  # each (B, F, d)
                vec = torch.relu(self.att(q, k, v, scale=d ** 0.5)[0] + r)  # (B, F, d)
                m = self.m_vec(vec.flatten(1)) + self.m_bit(self.bit(flat))  # (B, F)
                w = self.lr_emb(x).squeeze(-1)  # (B, F)
                logit = (m * w).sum(-1, keepdim=True) + self.bias + self.fm(emb * m.unsqueeze(-1))
            elif name == "edcn":
                c, h = self._regulate(0, flat)
                c0 = c
                for i in range(len(self.cross)):
                    c = self.cross[i](c0, c)  # (B, F·d)
                    h = self.dense[i](h)
                    bridge = c * h  # Hadamard bridge
                    if i + 1 < len(self.cross):
                        c, h = self._regulate(i + 1, bridge)
                logit = self.fc(torch.cat([c, h, bridge], dim=-1))
            else:  # finalmlp
                b = flat.shape[0]
                x1 = flat * 2 * self.fs_gate[0](self.fs_bias[0:1].expand(b, -1))
                x2 = flat * 2 * self.fs_gate[1](self.fs_bias[1:2].expand(b, -1))
                h1, h2 = self.mlp1(x1), self.mlp2(x2)  # (B, H) each
                hh = h1.shape[-1]
                xy = torch.einsum("bi,ij,bj->b", h1, self.w_xy.view(hh, hh), h2).unsqueeze(-1)
                logit = self.w_x(h1) + self.w_y(h2) + xy
            return {"y_pred": self.output_activation(logit)}

    return Model()


def run_fuxictr(spec: FeatureSpec, parts, labels, mcfg: ModelConfig, tcfg: TrainConfig, seed: int,
                task: str = "ctr", name: str = "dcnv2") -> dict:
    """Train FuxiCTR model ``name`` (default DCNv2) with its ``train_step``; return test probabilities (ratings
    for ``task="rating"``) and throughput."""
    from fuxictr.pytorch.torch_utils import seed_everything  # lazy: a peer library of the dev/bench extras

    if name not in FUXICTR_MODELS:
        raise ValueError(f"unknown FuxiCTR model {name!r}; expected one of {list(FUXICTR_MODELS)}")
    seed_everything(seed)
    cols = _columns(spec)
    with tempfile.TemporaryDirectory() as root:
        model = _fuxictr_model(spec, mcfg, root, task, name)
        model.compile("adam", "binary_crossentropy" if task == "ctr" else "mse_loss", tcfg.lr)  # torch F names
        model._max_gradient_norm = 10.0
        tensors = {p: {name: torch.from_numpy(np.ascontiguousarray(parts[p].cat[:, j])) for j, (name, _) in enumerate(cols)}
                   for p in ("train", "val", "test")}
        ytr = torch.from_numpy(labels["train"].astype(np.float32))
        gen = torch.Generator().manual_seed(seed)
        n = len(ytr)
        size = tcfg.batch_for(n)

        def train_epoch() -> float:
            model.train()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n, size):
                rows = perm[start:start + size]
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


def _fuxictr_runner(name: str):
    def run(spec, parts, labels, mcfg, tcfg, seed, task="ctr"):
        return run_fuxictr(spec, parts, labels, mcfg, tcfg, seed, task, name)
    return run


RUNNERS = {"deepctr_dcnmix": run_deepctr, **{f"fuxictr_{n}": _fuxictr_runner(n) for n in FUXICTR_MODELS}}
ALL_PEERS = ("deepctr_dcnmix",) + tuple(f"fuxictr_{n}" for n in FUXICTR_MODELS)
