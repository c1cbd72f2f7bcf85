"""The MMEI network and the baseline networks. Each maps a batch to (emotion logits, intent logits, z, alpha).

A batch is ``{modality: {"seq": (B, L, Ds), "mask": (B, L), "pooled": (B, Dp), "present": (B,)}}`` for
every modality the network was built with.
"""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple, Optional

import torch
from torch import nn

from aigcrec.affect.finetune_text import extended_mask  # transformers itself is imported lazily there
from aigcrec.affect.layers import (AttentionFusion, CrossModalLayer, GatedCrossAttention, ModalityProjection,
                                  Standardizer, masked_mean)

N_EMOTIONS = 7


class NetOutput(NamedTuple):
    """emotion (B, 7) and intent (B, K) logits, fused embedding (B, d), fusion weights (B, M) in the network's
    modality order, and per-modality expert emotion logits (B, M, 7) (MMEI; None for the baselines)."""

    emotion: torch.Tensor
    intent: torch.Tensor
    embedding: torch.Tensor
    weights: torch.Tensor
    unimodal: Optional[torch.Tensor] = None


class JointHeads(nn.Module):
    """Emotion head on z, intent head on [z ; softmax(emotion logits)] (intent conditioned on emotion).

    z (B, d) -> emotion logits (B, 7), intent logits (B, K).
    """

    def __init__(self, width: int, n_intents: int, dropout: float) -> None:
        super().__init__()
        self.emotion = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout),
                                     nn.Linear(width, N_EMOTIONS))
        self.intent = nn.Sequential(nn.Linear(width + N_EMOTIONS, width), nn.GELU(), nn.Dropout(dropout),
                                    nn.Linear(width, max(n_intents, 1)))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.emotion(z)  # (B, 7)
        return e, self.intent_from(z, e)

    def intent_from(self, z: torch.Tensor, emotion_logits: torch.Tensor) -> torch.Tensor:
        """(B, d), (B, 7) -> (B, K) intent logits conditioned on the emotion distribution."""
        return self.intent(torch.cat([z, torch.softmax(emotion_logits, dim=-1)], dim=-1))


class MMEINetwork(nn.Module):
    """Projection + missing tokens, cross-modal layers (text queries voice and face), attention fusion, heads.

    Fusion attends over M + 1 summaries: one per modality (an MLP on its pooled token) and the cross-modal
    one (mean of the text stream after cross-attention); its weights (B, M + 1) are returned, the last column
    being the cross-modal summary.

    Emotion logits are a robust product of modality experts plus the fused head (a residual):

        u_m = U_m(s_m)  (a small MLP)                              (B, 7) per-modality expert logits
        r_m = log((1 - eps_m) softmax(u_m / T_m) + eps_m pi) - log pi
        e   = log pi + sum_m present_m r_m + g head(z)

    Evidence from independent modalities adds up in log space; eps_m is the chance that modality m shows
    nothing useful or another emotion (it caps how far one modality can overrule the others), T_m its
    temperature, pi the reference distribution (uniform for class-weighted experts, whose outputs are
    already prior-free). T_m and eps_m are buffers fitted on dev after the experts' unimodal pre-training
    (``AffectModel``); ``head`` starts at zero, so joint training learns only what the product misses, and the
    gate g in [0, 1] (a buffer, 1 while training) is fitted on dev afterwards: a residual that learned the
    training set rather than the task is turned down instead of overruling the calibrated experts.

    Example::

        net = MMEINetwork({"text": (384, 384), "voice": (50, 88), "face": (256, 263)}, n_intents=6)
        out = net(batch)   # emotion (B, 7), intent (B, 6), embedding (B, d), weights (B, 4), unimodal (B, 3, 7)
    """

    def __init__(self, dims: dict[str, tuple[int, int]], n_intents: int, width: int = 64, heads: int = 4,
                 layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = [m for m in ("text", "voice", "face") if m in dims]
        self.query = "text" if "text" in dims else self.modalities[0]
        self.proj = nn.ModuleDict({m: ModalityProjection(*dims[m], width, dropout) for m in self.modalities})
        self.layers = nn.ModuleList([CrossModalLayer(width, heads, dropout) for _ in range(layers)])
        self.fusion = AttentionFusion(width)
        self.heads = JointHeads(width, n_intents, dropout)
        nn.init.zeros_(self.heads.emotion[-1].weight)  # the residual starts at 0: e = the experts' product
        nn.init.zeros_(self.heads.emotion[-1].bias)
        self.out_norm = nn.LayerNorm(width)
        self.unimodal = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout),
                                                        nn.Linear(width, N_EMOTIONS)) for m in self.modalities})
        self.summary = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout),
                                                       nn.Linear(2 * width, width), nn.LayerNorm(width))
                                      for m in self.modalities})
        n = len(self.modalities)
        self.register_buffer("log_prior", torch.full((N_EMOTIONS,), -math.log(N_EMOTIONS)))  # log pi
        self.register_buffer("expert_log_t", torch.zeros(n))  # log T_m
        self.register_buffer("expert_mix", torch.full((n,), -3.0))  # logit(eps_m)
        self.register_buffer("residual_gate", torch.ones(()))  # g

    def standardizers(self) -> dict[str, tuple[Standardizer | None, Standardizer]]:
        """modality -> (sequence standardizer, pooled standardizer), fitted on training rows."""
        return {m: (self.proj[m].norm_seq, self.proj[m].norm_pooled) for m in self.modalities}

    def expert_modules(self, modality: str) -> list[nn.Module]:
        """The modules one modality's expert runs through (projection, summary, emotion head)."""
        return [self.proj[modality], self.summary[modality], self.unimodal[modality]]

    def expert_parameters(self, modality: str) -> list[nn.Parameter]:
        """The parameters of one modality's expert: pre-trained alone, then frozen. The sequence projection
        and the missing token are not part of it (the expert reads the pooled token of a present modality),
        so the cross-modal layers still learn them in joint training."""
        proj = self.proj[modality]
        shared = {id(p) for p in (*proj.seq.parameters(), proj.missing)}
        return [p for mod in self.expert_modules(modality) for p in mod.parameters() if id(p) not in shared]

    def experts(self, batch: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """Per-modality expert logits u (B, M, 7), each from its own modality only."""
        return torch.stack([self.unimodal[m](self.summary[m](self.proj[m](**batch[m])[0][:, 0]))
                            for m in self.modalities], dim=1)

    def evidence(self, u: torch.Tensor, given: torch.Tensor, log_t: torch.Tensor | None = None,
                 mix: torch.Tensor | None = None) -> torch.Tensor:
        """Robust product of experts: u (B, M, 7), given (B, M) bool -> log pi + sum_m given_m r_m  (B, 7).

        ``log_t`` (M,) and ``mix`` (M,) default to the fitted buffers (passed explicitly while fitting them)."""
        log_t = self.expert_log_t if log_t is None else log_t
        mix = self.expert_mix if mix is None else mix
        log_p = torch.log_softmax(u / log_t.exp()[None, :, None], dim=-1)  # (B, M, 7)
        log_eps = nn.functional.logsigmoid(mix)[None, :, None]
        log_keep = nn.functional.logsigmoid(-mix)[None, :, None]
        r = torch.logaddexp(log_keep + log_p, log_eps + self.log_prior) - self.log_prior  # (B, M, 7)
        return self.log_prior + (r * given.unsqueeze(-1).to(r.dtype)).sum(1)

    def forward(self, batch: dict[str, dict[str, torch.Tensor]], experts_only: bool = False):
        """NetOutput; with ``experts_only`` just the expert logits (B, M, 7) (unimodal pre-training goes
        through ``forward`` so that a DDP wrapper still synchronises its gradients)."""
        if experts_only:
            return self.experts(batch)
        tokens = {m: self.proj[m](**batch[m]) for m in self.modalities}  # m -> ((B, L_m, d), (B, L_m))
        q, q_mask = tokens[self.query]
        others = [m for m in self.modalities if m != self.query]
        if others:
            ctx = torch.cat([tokens[m][0] for m in others], dim=1)  # (B, Lc, d)
            ctx_mask = torch.cat([tokens[m][1] for m in others], dim=1)
        else:
            ctx, ctx_mask = q, q_mask
        for layer in self.layers:
            q = layer(q, q_mask, ctx, ctx_mask)
        # one summary per modality (an MLP on its pooled token) plus the cross-modal summary (mean of the
        # text stream after it attended to voice and face); fusion attends over all M + 1 of them
        summaries = torch.stack([self.summary[m](tokens[m][0][:, 0]) for m in self.modalities]
                                + [masked_mean(q, q_mask)], dim=1)  # (B, M + 1, d)
        given = torch.stack([batch[m]["present"] for m in self.modalities], dim=1)  # (B, M)
        z, alpha = self.fusion(summaries, torch.cat([given, torch.ones_like(given[:, :1])], dim=1))
        z = self.out_norm(z)  # (B, d)
        u = torch.stack([self.unimodal[m](summaries[:, j]) for j, m in enumerate(self.modalities)], dim=1)
        e = self.evidence(u, given) + self.residual_gate * self.heads.emotion(z)  # (B, 7)
        return NetOutput(e, self.heads.intent_from(z, e), z, alpha, u)

    def emotion_parts(self, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(experts' robust product (B, 7), ungated residual head(z) (B, 7)): e = product + g * residual."""
        out = self(batch)
        given = torch.stack([batch[m]["present"] for m in self.modalities], dim=1)
        return self.evidence(out.unimodal, given), self.heads.emotion(out.embedding)


class PooledMLPNetwork(nn.Module):
    """Baseline on pooled vectors: x = [std(p_m) * present_m ; present_m]_m, h = MLP(x), joint heads.

    One modality = a unimodal baseline; all modalities = early fusion (concatenation + MLP).
    """

    def __init__(self, dims: dict[str, tuple[int, int]], n_intents: int, width: int = 64, dropout: float = 0.1
                 ) -> None:
        super().__init__()
        self.modalities = [m for m in ("text", "voice", "face") if m in dims]
        self.norm = nn.ModuleDict({m: Standardizer(dims[m][1]) for m in self.modalities})
        d_in = sum(dims[m][1] + 1 for m in self.modalities)
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, 2 * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * width, width), nn.LayerNorm(width))
        self.heads = JointHeads(width, n_intents, dropout)

    def standardizers(self) -> dict[str, tuple[Standardizer | None, Standardizer]]:
        """modality -> (sequence standardizer or None, pooled standardizer), fitted on training rows."""
        return {m: (None, self.norm[m]) for m in self.modalities}

    def forward(self, batch: dict[str, dict[str, torch.Tensor]]):
        parts = []
        for m in self.modalities:
            p = batch[m]["present"].to(torch.float32)[:, None]  # (B, 1)
            parts += [self.norm[m](batch[m]["pooled"]) * p, p]
        z = self.mlp(torch.cat(parts, dim=1))  # (B, d)
        e, i = self.heads(z)
        present = torch.stack([batch[m]["present"] for m in self.modalities], dim=1).to(torch.float32)
        return NetOutput(e, i, z, present / present.sum(1, keepdim=True).clamp(min=1.0))


class MMEIPaperNetwork(nn.Module):
    """``mmei_paper``: the BERT-based cross-modal transformer the MMEI abstract names, with cross-attention to
    voice and face inserted into the text encoder's own layers (MAG-BERT / MulT style).

    The input text states are those entering the top L layers of the text encoder (its embeddings and lower
    layers frozen and run once, ``aigcrec.affect.tasks.paper_text_features``). With x_0 (B, T, H) those states,
    C = [P_v(voice) ; P_f(face)] (B, Lc, H) the projected voice and face tokens (``ModalityProjection``: pooled
    token + frames, type embedding, a learned missing token where a modality is absent), for l = 1 .. L:

        x_l = GatedXAttn_l(BertLayer_l(x_{l-1}), C)       gates tanh(a_l), tanh(b_l) start at 0
        z   = LN(W mean_t(m_t x_L,t))                      (B, d)
        emotion = head_e(z) (B, 7);  intent = head_i([z ; softmax(emotion)]) (B, K)

    At initialisation every gate is 0, so the network is the text model (its top layers, mean pooling) plus
    the heads; training opens the gates where voice and face change what the words mean. A row without
    text reads one learned missing-text token instead (so the query stream is never empty). Fusion weights
    returned: the presence of each modality, normalised (no attention weights over modalities to report).

    ``text_layers``: the encoder's top L ``BertLayer`` modules (copied; trained); ``text_config``: its
    transformers config (attention-mask layout).

    Example::

        net = MMEIPaperNetwork({"text": (384, 384), "voice": (50, 88), "face": (256, 263)}, 5, layers, config)
        out = net(batch)   # emotion (B, 7), intent (B, 5), embedding (B, d), weights (B, 3)
    """

    def __init__(self, dims: dict[str, tuple[int, int]], n_intents: int, text_layers: list[nn.Module],
                 text_config: Any, width: int = 64, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        if "text" not in dims:
            raise ValueError(f"mmei_paper: expected a text modality (its query stream), got {sorted(dims)}")
        hidden = int(text_config.hidden_size)
        if dims["text"][0] != hidden:
            raise ValueError(f"mmei_paper: expected text token states of the text encoder's width {hidden}, got "
                             f"{dims['text'][0]}")
        self.modalities = [m for m in ("text", "voice", "face") if m in dims]
        self.context = [m for m in self.modalities if m != "text"]
        self.text_config = text_config
        self.text_layers = nn.ModuleList(copy.deepcopy(list(text_layers)))
        self.missing_text = nn.Parameter(torch.randn(hidden) * 0.02)
        self.proj = nn.ModuleDict({m: ModalityProjection(*dims[m], hidden, dropout) for m in self.context})
        self.blocks = nn.ModuleList([GatedCrossAttention(hidden, heads, dropout) for _ in text_layers])
        self.pool = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, width), nn.LayerNorm(width))
        self.heads = JointHeads(width, n_intents, dropout)

    def standardizers(self) -> dict[str, tuple[Standardizer | None, Standardizer]]:
        """modality -> (sequence, pooled) standardizers of voice and face (the text states enter as they are)."""
        return {m: (self.proj[m].norm_seq, self.proj[m].norm_pooled) for m in self.context}

    def param_groups(self, text_lr: float, new_lr: float) -> list[dict[str, Any]]:
        """AdamW groups: the fine-tuned text layers at ``text_lr``, everything new at ``new_lr``."""
        text = list(self.text_layers.parameters())
        ids = {id(p) for p in text}
        return [{"params": text, "lr": text_lr},
                {"params": [p for p in self.parameters() if id(p) not in ids], "lr": new_lr}]

    def text_states(self, batch: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """x_L (B, T, H) and its mask (B, T): the top text layers with the gated cross-attention blocks."""
        t = batch["text"]
        present = t["present"]  # (B,)
        x = t["seq"] * present[:, None, None].to(t["seq"].dtype)  # (B, T, H)
        first = torch.where(present[:, None], x[:, 0], self.missing_text)  # (B, H)
        x = torch.cat([first[:, None], x[:, 1:]], dim=1)  # (B, T, H)
        mask = t["mask"] & present[:, None]
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, 1:]], dim=1)  # (B, T), position 0 always real
        if self.context:
            tokens = [self.proj[m](**batch[m]) for m in self.context]  # ((B, L_m, H), (B, L_m))
            ctx = torch.cat([tok for tok, _ in tokens], dim=1)  # (B, Lc, H)
            ctx_mask = torch.cat([keep for _, keep in tokens], dim=1)  # (B, Lc)
        am = extended_mask(self.text_config, x, mask.long())
        for layer, block in zip(self.text_layers, self.blocks):
            x = layer(x, am)  # (B, T, H)
            if self.context:
                x = block(x, ctx, ctx_mask)
        return x, mask

    def forward(self, batch: dict[str, dict[str, torch.Tensor]]):
        x, mask = self.text_states(batch)
        z = self.pool(masked_mean(x, mask))  # (B, d)
        e, i = self.heads(z)
        present = torch.stack([batch[m]["present"] for m in self.modalities], dim=1).to(torch.float32)  # (B, M)
        return NetOutput(e, i, z, present / present.sum(1, keepdim=True).clamp(min=1.0))
