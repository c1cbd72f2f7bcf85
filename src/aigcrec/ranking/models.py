"""UMAIR-FPS and the baselines, all on one input convention and one trainer.

A batch is a dict of tensors: ``cat`` (B, F_cat) int64, ``tags`` (B, F_tag, L) int64, ``num`` (B, F_num)
float32 and one (B, d_f) float32 tensor per vector field (looked up by ``Ranker.lookup`` from tables that
are frozen or trainable per ``Field.freeze``). Every model returns logits (B,); ``forward_with_weights``
also returns the modality weights α (B, M) (uniform for models without UMCM).

UMAIR-FPS also takes table rows in place of vectors (the training path, ``"<name>@rows"``): an item's
modality vectors (B,) rows, projected once per distinct item of the batch, and a history profile's (B, L)
rows, pooled after projection. Both give the scores of the vector inputs (tested).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aigcrec.ranking.config import ModelConfig
from aigcrec.ranking.features import FeatureSpec, split_history_key

ROWS_SUFFIX = "@rows"  # batch key suffix of table rows in place of vectors: (B,) per item, (B, L) per history
from aigcrec.ranking.layers import (CIN, MLP, ContributionMixture, CrossNetV1, CrossNetV2, Dropout, FMInteraction, UMCM,
                                    UserAwareSENet)

Batch = dict[str, torch.Tensor]
EMBEDDING_INIT_STD = 1e-4


def reset_linear(module: nn.Module) -> nn.Module:
    """Xavier-normal weights and zero biases for every ``nn.Linear`` (FuxiCTR ``BaseModel.reset_parameters``)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class FieldEmbedding(nn.Module):
    """Sparse, tags and numeric fields to one embedding each: (B, F, d), F = F_cat + F_tag + F_num.

    Sparse: a row of one shared table (per-field offsets). Tags: mean of the non-padding rows.
    Numeric: ``x_f v_f`` with a learned v_f in R^d. With ``d = 1`` this is the wide (LR) part.
    Rows and v_f start at N(0, 1e-4²), the initialiser of FuxiCTR's ``FeatureEmbedding`` and DeepCTR-Torch
    (``init_std``): interactions start near zero and the ids' main effects are learnt first.
    """

    def __init__(self, spec: FeatureSpec, dim: int) -> None:
        super().__init__()
        sizes = [spec.cardinality(f) for f in spec.sparse] + [spec.cardinality(f) for f in spec.tags]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
        n_cat = len(spec.sparse)
        self.register_buffer("cat_offsets", torch.from_numpy(offsets[:n_cat].copy()), persistent=False)
        self.register_buffer("tag_offsets", torch.from_numpy(offsets[n_cat:].copy()), persistent=False)
        self.table = nn.Embedding(max(1, int(sum(sizes))), dim)
        nn.init.normal_(self.table.weight, std=EMBEDDING_INIT_STD)
        self.num = nn.Parameter(torch.randn(len(spec.dense), dim) * EMBEDDING_INIT_STD)
        order = spec.sparse + spec.tags + spec.dense
        self.sides = [f.side for f in order]
        self.groups = [f.group for f in order]
        self.num_fields = len(self.sides)

    @torch.no_grad()
    def init_group(self, spec: FeatureSpec, group: str, std: float) -> None:
        """Re-draw the rows (sparse) and vectors (numeric) of the fields of ``group`` from N(0, std²)."""
        for f, start in zip(spec.sparse, self.cat_offsets.tolist()):
            if f.group == group:
                self.table.weight[start:start + spec.cardinality(f)].normal_(0.0, std)
        for j, f in enumerate(spec.dense):
            if f.group == group:
                self.num[j].normal_(0.0, std)

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Table rows ``idx`` (...) -> (..., d), as ``self.table(idx)``: a gather whose backward is an ``index_add_``
        (faster on this CPU than ``nn.Embedding``'s sort-based dense backward at batch 1,024)."""
        return self.table.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, self.table.embedding_dim)

    def forward(self, batch: Batch) -> torch.Tensor:
        parts = []
        if self.cat_offsets.numel():
            parts.append(self.rows(batch["cat"] + self.cat_offsets))  # (B, F_cat, d)
        if self.tag_offsets.numel():
            tags = batch["tags"]  # (B, F_tag, L)
            mask = (tags > 0).unsqueeze(-1).float()  # (B, F_tag, L, 1)
            rows = self.rows(tags + self.tag_offsets.view(1, -1, 1))  # (B, F_tag, L, d)
            parts.append((rows * mask).sum(2) / mask.sum(2).clamp(min=1.0))  # (B, F_tag, d)
        if self.num.shape[0]:
            parts.append(batch["num"].unsqueeze(-1) * self.num)  # (B, F_num, d)
        return torch.cat(parts, dim=1)


def pooled_projection(rows: torch.Tensor, table: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``mean_j W e_j`` (B, D_out) over the non-zero rows j of each row of ``rows`` (B, L) (0 = padding; zeros
    for an empty row); ``table`` (n, d), ``weight`` W (D_out, d). Each table row the batch names is projected
    once (all of them when the batch names at least n items), then pooled with offsets over the real items only.
    """
    real = rows > 0  # (B, L)
    flat = rows[real]  # (T,) the items, row after row
    counts = real.sum(dim=1)  # (B,)
    offsets = torch.cumsum(counts, 0) - counts  # (B,) start of each row in flat
    if flat.numel() >= table.shape[0]:
        projected = table @ weight.T  # (n, D_out)
    else:
        items, flat = torch.unique(flat, return_inverse=True)  # (U,), (T,)
        projected = table.index_select(0, items) @ weight.T  # (U, D_out)
    return F.embedding_bag(flat, projected, offsets, mode="mean")  # (B, D_out)


class Ranker(nn.Module):
    """Base of every neural ranker: the spec, the vector tables and the wide (LR) logit."""

    uses_vectors = False
    peer_init = True  # build_model applies ``reset_linear``, as FuxiCTR's BaseModel does

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables: dict[str, np.ndarray] | None = None) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.tables = nn.ModuleDict()
        if self.uses_vectors:
            for f in spec.vectors:
                if tables is None or f.name not in tables:
                    raise ValueError(f"{type(self).__name__}: vector field '{f.name}' needs its table")
                self.tables[f.name] = nn.Embedding.from_pretrained(torch.as_tensor(tables[f.name]), freeze=f.freeze)
        self.wide = FieldEmbedding(spec, 1)
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def modality_names(self) -> list[str]:
        return ["tabular"]

    @property
    def history_keys(self) -> list[str]:
        """``"<history field>:<table>"`` profiles the model reads (none for models without vectors)."""
        return []

    @property
    def vector_inputs(self) -> list[str]:
        """Batch keys of the dense vector inputs: one per vector table, then one per history profile."""
        return list(self.tables) + self.history_keys

    def lookup(self, vec_idx: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Vector-table rows for the batch: name -> (B, d)."""
        return {name: table(vec_idx[name]) for name, table in self.tables.items()}

    def history_profile(self, key: str, rows: torch.Tensor) -> torch.Tensor:
        """The raw profile ``"<history>:<table>"`` of history rows (B, L) (0 = padding, skipped): the mean of
        those table rows (B, d), zeros for an empty history (what serving and the ONNX graph take)."""
        return F.embedding_bag(rows, self.tables[split_history_key(key)[1]].weight, mode="mean", padding_idx=0)

    def wide_logit(self, batch: Batch) -> torch.Tensor:
        return self.wide(batch).sum(dim=(1, 2)) + self.bias  # (B,)

    def forward_with_weights(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logit = self.forward(batch)
        m = len(self.modality_names)
        return logit, torch.full((logit.shape[0], m), 1.0 / m, dtype=logit.dtype, device=logit.device)


class LR(Ranker):
    """Logistic regression: ``logit = b + Σ_f w_f(x_f)``."""

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.wide_logit(batch)


class FM(Ranker):
    """Factorization machine: LR plus the pairwise term of ``FMInteraction``."""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables=None) -> None:
        super().__init__(spec, cfg, tables)
        self.emb = FieldEmbedding(spec, cfg.embedding_dim)
        self.fm = FMInteraction()

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.wide_logit(batch) + self.fm(self.emb(batch))


class DeepFM(FM):
    """DeepFM: FM plus a DNN over the flattened embeddings (shared embeddings)."""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables=None) -> None:
        super().__init__(spec, cfg, tables)
        self.dnn = MLP(self.emb.num_fields * cfg.embedding_dim, cfg.dnn_units, cfg.dropout)
        self.head = nn.Linear(self.dnn.out_dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        e = self.emb(batch)  # (B, F, d)
        return self.wide_logit(batch) + self.fm(e) + self.head(self.dnn(e.flatten(1))).squeeze(-1)


class CrossDeep(nn.Module):
    """Cross network and DNN in one of four structures over z (B, D); output (B, H).

    crossnet_only: ``Cross(z)``; stacked: ``DNN(Cross(z))``; parallel: ``[Cross(z); DNN(z)]``;
    stacked_parallel: ``[DNN_1(Cross(z)); DNN_2(z)]``. ``cross_layers = 0`` drops the cross network
    (z goes straight to the DNN).
    """

    def __init__(self, in_dim: int, cfg: ModelConfig, version: int = 2) -> None:
        super().__init__()
        self.structure = cfg.structure if cfg.cross_layers > 0 else "stacked"
        if cfg.cross_layers == 0:
            self.cross: nn.Module = nn.Identity()
        elif version == 1:
            self.cross = CrossNetV1(in_dim, cfg.cross_layers)
        else:
            self.cross = CrossNetV2(in_dim, cfg.cross_layers, cfg.cross_kind, cfg.low_rank, cfg.num_experts)
        s = self.structure
        self.dnn = MLP(in_dim, cfg.dnn_units, cfg.dropout) if s != "crossnet_only" else None
        self.dnn2 = MLP(in_dim, cfg.dnn_units, cfg.dropout) if s == "stacked_parallel" else None
        self.out_dim = {"crossnet_only": in_dim, "stacked": self.dnn.out_dim if self.dnn else 0,
                        "parallel": in_dim + (self.dnn.out_dim if self.dnn else 0),
                        "stacked_parallel": 2 * (self.dnn.out_dim if self.dnn else 0)}[s]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.structure == "crossnet_only":
            return self.cross(z)
        if self.structure == "stacked":
            return self.dnn(self.cross(z))
        if self.structure == "parallel":
            return torch.cat([self.cross(z), self.dnn(z)], dim=-1)
        return torch.cat([self.dnn(self.cross(z)), self.dnn2(z)], dim=-1)


class DCN(Ranker):
    """DCN (``version=1``) or DCN-V2 (``version=2``) on the flattened tabular embeddings, plus LR."""

    version = 2

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables=None) -> None:
        super().__init__(spec, cfg, tables)
        self.emb = FieldEmbedding(spec, cfg.embedding_dim)
        self.net = CrossDeep(self.emb.num_fields * cfg.embedding_dim, cfg, self.version)
        self.head = nn.Linear(self.net.out_dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        z = self.emb(batch).flatten(1)  # (B, F*d)
        return self.wide_logit(batch) + self.head(self.net(z)).squeeze(-1)


class DCNv1(DCN):
    version = 1


class XDeepFM(Ranker):
    """xDeepFM: LR + CIN [16, 16] + DNN on shared embeddings."""

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables=None) -> None:
        super().__init__(spec, cfg, tables)
        self.emb = FieldEmbedding(spec, cfg.embedding_dim)
        self.cin = CIN(self.emb.num_fields, [16, 16])
        self.dnn = MLP(self.emb.num_fields * cfg.embedding_dim, cfg.dnn_units, cfg.dropout)
        self.head = nn.Linear(self.cin.out_dim + self.dnn.out_dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        e = self.emb(batch)  # (B, F, d)
        return self.wide_logit(batch) + self.head(torch.cat([self.cin(e), self.dnn(e.flatten(1))], -1)).squeeze(-1)


class UMAIRFPSRanker(Ranker):
    """UMAIR-FPS: towers, modality projections, UMCM, DCN-V2 on [e_MM; e_u; a], DNN, wide LR, sigmoid.

    - context ``a = [affect; C]``: the affect vectors (MMEI's emotion/intent probabilities + fused embedding,
      any width; context-side vector fields) and C (B, F_c*d), the flattened embeddings of the explicit
      context group (``FeatureSpec.context``, ``group="context"``: categorical labels with a missing token,
      scaled numbers; rows started at N(0, ``context_init_std``²), not the 1e-4 of the other fields), from
      either source or both;
    - user tower: ``e_u = MLP([user (and other context-side) field embeddings; a])`` (B, D_m) — the context conditions UMCM's query
      through e_u;
    - item sparse tower: ``m_0 = MLP(item field embeddings)`` (B, D_m);
    - modalities: ``m_k = Dropout(ReLU(W_k e_k + b_k))`` for e_SEM, e_STY, e_TSEM (B, D_m) (``modality_dropout``,
      none by default); ``M = [m_0..m_K]`` (B, M, D_m);
    - contribution: ``e_MM, α = UMCM(e_u, M)`` (or SENet / mixture; ``concat`` flattens M, α uniform);
    - content profile (``use_history`` and a ``history`` field; not in the paper): for each used modality k,
      ``p_k = ReLU(V_k h_k + c_k)`` (B, D_m), h_k the mean of e_k over the user's earlier positive items
      (``Ranker.lookup``); P = [p_k] joins the user tower's input and z, where the cross network can match
      the candidate's m_k against it;
    - match terms (``match``; not in the paper): ``p_k ⊙ m_k`` for each profile (does the candidate look like
      what the user liked?) and ``q ⊙ m_k`` for each modality with ``q = W_q a`` (does it fit the current
      mood?) (B, D_m) each, X = all of them; with an explicit context group also ``q ⊙ m_0`` (the item-id
      tower), since context-aware rating sets often have no content vectors at all;
    - ``z = [e_MM; e_u; ReLU(W_a a); P; E; X]`` -> ``CrossDeep`` -> Linear -> + wide logit, where E (B, F*d) are the
      flattened field embeddings (``cross_fields``; the paper's z stops at e_u);
    - FM cross (``fm_cross``; not in the paper): + ``Σ_{i<j} <v_i, v_j>`` over the F field embeddings
      v_f = E[:, f] (B, d) (user, item, explicit context and every other field; ``FMInteraction``, (B,)): the
      explicit pairwise user x item (x context) term of a factorization machine, which the DNN and the cross
      network only approximate.

    Output logits (B,); ``forward_with_weights`` adds α (B, M) in the order of ``modality_names``.
    """

    uses_vectors = True
    # torch's default Linear init (random biases): with zero biases the ReLU towers and the affect projection
    # start near zero on 1e-4 embeddings, and on the synthetic mood x style data the affect path stayed unused.
    peer_init = False

    def __init__(self, spec: FeatureSpec, cfg: ModelConfig, tables: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(spec, cfg, tables)
        d, dm = cfg.embedding_dim, cfg.modality_dim
        self.emb = FieldEmbedding(spec, d)
        self.emb.init_group(spec, "context", cfg.context_init_std)  # a no-op without an explicit context
        sides, groups = self.emb.sides, self.emb.groups
        # user tower: user- and context-side fields, except the explicit context group (which joins the affect)
        for name, pick in (("user_idx", lambda s, g: s != "item" and g != "context"), ("item_idx", lambda s, g: s == "item"),
                           ("context_idx", lambda s, g: g == "context")):
            idx = [i for i, (s, g) in enumerate(zip(sides, groups)) if pick(s, g)]
            self.register_buffer(name, torch.tensor(idx, dtype=torch.long), persistent=False)
        if not len(self.item_idx) or not len(self.user_idx):
            raise ValueError(f"UMAIR-FPS needs item-side and user-side fields, got sides {sides}")
        self.modalities = [f for f in spec.vectors if f.modality and f.name in cfg.use_modalities]
        self.affect = [f for f in spec.vectors if not f.modality] if cfg.use_affect else []
        affect_in = sum(f.dim for f in self.affect) + len(self.context_idx) * d
        used = [f.name for f in self.modalities]
        self._history_keys = spec.history_keys(used) if cfg.use_history else []
        self.hist_proj = nn.ModuleDict({self._table(key): nn.Linear(self.tables[self._table(key)].embedding_dim, dm)
                                        for key in self._history_keys})
        hist_dim = len(self._history_keys) * dm
        towers = cfg.tower_units[:-1] + [dm]
        self.user_tower = MLP(len(self.user_idx) * d + affect_in + hist_dim, towers)
        self.item_tower = MLP(len(self.item_idx) * d, towers)
        drop = [Dropout(cfg.modality_dropout)] if cfg.modality_dropout > 0 else []
        self.proj = nn.ModuleDict({f.name: nn.Sequential(nn.Linear(f.dim, dm), nn.ReLU(), *drop) for f in self.modalities})
        m = 1 + len(self.modalities)
        # all three are built (as before the switch), so a seed gives the same initial weights
        scale = cfg.attention_scale
        self.contribution = {"attention": UMCM(scale), "senet": UserAwareSENet(m, dm),
                             "mixture": ContributionMixture(m, dm, scale), "concat": None}[cfg.contribution]
        self.affect_proj = nn.Sequential(nn.Linear(affect_in, cfg.affect_dim), nn.ReLU()) if affect_in else None
        # q ⊙ m_k for k >= 1, and for m_0 too when there is an explicit context (on the item-id tower alone)
        self.match_from = 0 if len(self.context_idx) else 1
        n_match = 1 + len(self.modalities) - self.match_from
        self.affect_match = nn.Linear(affect_in, dm) if affect_in and cfg.match and n_match else None
        z_dim = (m * dm if cfg.contribution == "concat" else dm) + dm + (cfg.affect_dim if affect_in else 0)
        z_dim += hist_dim + (self.emb.num_fields * d if cfg.cross_fields else 0)
        if cfg.match:  # p_k ⊙ m_k per profile, q ⊙ m_k per modality
            z_dim += hist_dim + (n_match * dm if self.affect_match is not None else 0)
        self.net = CrossDeep(z_dim, cfg)
        self.head = nn.Linear(self.net.out_dim, 1)
        self.fm = FMInteraction() if cfg.fm_cross else None

    @property
    def modality_names(self) -> list[str]:
        return ["item_id"] + [f.name for f in self.modalities]

    @property
    def history_keys(self) -> list[str]:
        return list(self._history_keys)

    @staticmethod
    def _table(key: str) -> str:
        return split_history_key(key)[1]

    def lookup(self, vec_idx: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The affect vectors (B, d_a), the modality rows (``"<name>@rows"``, (B,)) and the history rows
        (``"<key>@rows"``, (B, L)) of each profile given as rows (``vec_idx[key]``; the trainer passes most
        profiles precomputed instead, ``trainer.with_profiles``). ``item_stack`` projects each distinct item of
        the batch once; ``profiles`` averages the *projected* rows, ``V_k mean(e) = mean(V_k e)``, which moves
        D_m instead of d values per history item (serving passes vectors and raw means, ``history_profile``)."""
        out = {f.name: self.tables[f.name](vec_idx[f.name]) for f in self.affect}  # (B, d_a)
        out.update({f"{f.name}{ROWS_SUFFIX}": vec_idx[f.name] for f in self.modalities})  # (B,), see item_stack
        out.update({f"{key}{ROWS_SUFFIX}": vec_idx[key] for key in self._history_keys if key in vec_idx})
        return out

    def profiles(self, batch: Batch) -> list[torch.Tensor]:
        """p_k = ReLU(V_k h_k + c_k) (B, D_m) per history key, from the raw mean h_k (``batch[key]``, (B, d))
        or from the history rows (``batch[key + "@rows"]``, (B, L)); the two are equal (tested)."""
        out = []
        for key in self._history_keys:
            lin = self.hist_proj[self._table(key)]
            if key in batch:
                out.append(torch.relu(lin(batch[key])))
            else:
                mean = pooled_projection(batch[f"{key}{ROWS_SUFFIX}"], self.tables[self._table(key)].weight, lin.weight)
                out.append(torch.relu(mean + lin.bias))
        return out

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.forward_with_weights(batch)[0]

    def item_stack(self, batch: Batch, e: torch.Tensor | None = None) -> torch.Tensor:
        """The item-side modality vectors ``M = [m_0..m_K]`` (B, M, D_m) from the item fields and vectors.

        They depend on the item alone, so a server computes them once per item (``RankerBundle`` caches them
        and passes them to ``forward_with_weights(batch, stack)``); ``e``: the batch's field embeddings.
        """
        e = self.emb(batch) if e is None else e  # (B, F, d)
        m0 = self.item_tower(e.index_select(1, self.item_idx).flatten(1))  # (B, D_m)
        return torch.stack([m0] + [self._modality(f.name, batch) for f in self.modalities], dim=1)

    def _modality(self, name: str, batch: Batch) -> torch.Tensor:
        """m_k (B, D_m) from the vectors ``batch[name]`` (B, d), or from the rows ``batch[name + "@rows"]`` (B,):
        ``ReLU(W_k e + b_k)`` of each distinct row once, then each sample's row and its own dropout."""
        proj = self.proj[name]  # Linear, ReLU[, Dropout]
        if name in batch:
            return proj(batch[name])
        items, local = torch.unique(batch[f"{name}{ROWS_SUFFIX}"], return_inverse=True)  # (U,), (B,)
        m = proj[1](proj[0](self.tables[name](items))).index_select(0, local)  # (B, D_m)
        return proj[2](m) if len(proj) > 2 else m

    def forward_with_weights(self, batch: Batch, stack: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B,), α (B, M)); ``stack``: precomputed ``item_stack`` rows (then no item vector is read)."""
        e = self.emb(batch)  # (B, F, d)
        affect = [batch[f.name] for f in self.affect]  # each (B, d_a)
        if len(self.context_idx):
            affect.append(e.index_select(1, self.context_idx).flatten(1))  # C (B, F_c*d)
        profile = self.profiles(batch)  # each (B, D_m)
        e_u = self.user_tower(torch.cat([e.index_select(1, self.user_idx).flatten(1)] + affect + profile, dim=-1))
        stack = self.item_stack(batch, e) if stack is None else stack  # (B, M, D_m)
        if self.contribution is None:
            e_mm = stack.flatten(1)  # (B, M*D_m)
            alpha = torch.full(stack.shape[:2], 1.0 / stack.shape[1], dtype=stack.dtype, device=stack.device)
        else:
            e_mm, alpha = self.contribution(e_u, stack)  # (B, D_m), (B, M)
        z = [e_mm, e_u] + ([self.affect_proj(torch.cat(affect, dim=-1))] if self.affect_proj is not None else [])
        z += profile + ([e.flatten(1)] if self.cfg.cross_fields else [])  # (B, F*d)
        if self.cfg.match:
            names = [f.name for f in self.modalities]
            z += [p * stack[:, 1 + names.index(self._table(k))] for p, k in zip(profile, self._history_keys)]
            if self.affect_match is not None:
                q = self.affect_match(torch.cat(affect, dim=-1))  # (B, D_m)
                z += [q * stack[:, j] for j in range(self.match_from, stack.shape[1])]
        logit = self.wide_logit(batch) + self.head(self.net(torch.cat(z, dim=-1))).squeeze(-1)
        if self.fm is not None:
            logit = logit + self.fm(e)  # (B,)
        return logit, alpha


MODELS: dict[str, type[Ranker]] = {
    "lr": LR,
    "fm": FM,
    "deepfm": DeepFM,
    "dcn": DCNv1,
    "dcnv2": DCN,
    "xdeepfm": XDeepFM,
    "umair_fps": UMAIRFPSRanker,
}


def build_model(kind: str, spec: FeatureSpec, cfg: ModelConfig, tables: dict[str, np.ndarray] | None = None) -> Ranker:
    """Instantiate ``MODELS[kind]`` (``reset_linear`` if ``peer_init``); tabular models get the spec without vectors."""
    if kind not in MODELS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODELS)}")
    cls = MODELS[kind]
    if not cls.uses_vectors:
        spec = spec.tabular_only()
    model = cls(spec, cfg, tables)
    return reset_linear(model) if cls.peer_init else model
