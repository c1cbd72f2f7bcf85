"""The MMEI network and the baseline networks. Each maps a batch to (emotion logits, intent logits, z, alpha).

A batch is ``{modality: {"seq": (B, L, Ds), "mask": (B, L), "pooled": (B, Dp), "present": (B,)}}`` for
every modality the network was built with.
"""

from __future__ import annotations

import torch
from torch import nn

from typing import NamedTuple, Optional

from aigcrec.affect.layers import AttentionFusion, CrossModalLayer, ModalityProjection, Standardizer, masked_mean

N_EMOTIONS = 7


class NetOutput(NamedTuple):
    """emotion (B, 7) and intent (B, K) logits, fused embedding (B, d), fusion weights (B, M) in the network's
    modality order, and per-modality emotion logits (B, M, 7) for the auxiliary loss (None if unused)."""

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
    being the cross-modal summary. Besides the fused emotion head, each modality summary s_m has a linear emotion head u_m = U_m s_m; the
    final emotion logits are head(z) + sum_m present_m u_m (a product-of-experts residual: evidence from
    independent modalities adds up in log space, and the cross-modal part learns what it cannot express).
    The u_m also get their own loss (``aux_weight``), which keeps each modality's summary discriminative.

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
        self.out_norm = nn.LayerNorm(width)
        self.unimodal = nn.ModuleDict({m: nn.Linear(width, N_EMOTIONS) for m in self.modalities})
        self.summary = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout),
                                                       nn.Linear(2 * width, width), nn.LayerNorm(width))
                                      for m in self.modalities})

    def standardizers(self) -> dict[str, tuple[Standardizer | None, Standardizer]]:
        """modality -> (sequence standardizer, pooled standardizer), fitted on training rows."""
        return {m: (self.proj[m].norm_seq, self.proj[m].norm_pooled) for m in self.modalities}

    def forward(self, batch: dict[str, dict[str, torch.Tensor]]):
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
        e = self.heads.emotion(z) + (u * given.unsqueeze(-1).to(u.dtype)).sum(1)  # (B, 7)
        return NetOutput(e, self.heads.intent_from(z, e), z, alpha, u)


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
