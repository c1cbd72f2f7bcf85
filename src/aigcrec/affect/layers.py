"""Layers of MMEI: modality projection with missing tokens, the cross-modal layer, attention fusion pooling."""

from __future__ import annotations

import torch
from torch import nn


class Standardizer(nn.Module):
    """x -> (x - mu) / sigma with statistics fitted once on training rows (buffers, saved with the model).

    Shapes: x (..., D); mu, sigma (D,).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sigma", torch.ones(dim))

    @torch.no_grad()
    def fit(self, rows: torch.Tensor) -> None:
        """rows: (N, D) real (unpadded, present) vectors."""
        if len(rows) > 1:
            self.mu.copy_(rows.mean(0))
            self.sigma.copy_(rows.std(0).clamp(min=1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mu) / self.sigma).clamp(-10.0, 10.0)


class ModalityProjection(nn.Module):
    """One modality to tokens of the shared width d, with a learned missing-modality token.

    tokens = LN([W_p p ; W_s s_1 .. W_s s_L] + e_type)  (B, 1 + L, d), key mask (B, 1 + L).
    A row whose modality is absent becomes [e_missing + e_type] with only that position unmasked, so
    attention over it is always defined and the model learns what absence means.
    """

    def __init__(self, seq_dim: int, pooled_dim: int, width: int, dropout: float) -> None:
        super().__init__()
        self.norm_seq, self.norm_pooled = Standardizer(seq_dim), Standardizer(pooled_dim)
        self.seq = nn.Linear(seq_dim, width)
        self.pooled = nn.Linear(pooled_dim, width)
        self.type_emb = nn.Parameter(torch.randn(width) * 0.02)
        self.missing = nn.Parameter(torch.randn(width) * 0.02)
        self.norm = nn.LayerNorm(width)
        self.drop = nn.Dropout(dropout)

    def forward(self, seq: torch.Tensor, mask: torch.Tensor, pooled: torch.Tensor, present: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """seq (B, L, Ds), mask (B, L) bool, pooled (B, Dp), present (B,) bool -> (B, 1+L, d), (B, 1+L)."""
        p = present[:, None]  # (B, 1)
        first = torch.where(p, self.pooled(self.norm_pooled(pooled)), self.missing)  # (B, d)
        rest = self.seq(self.norm_seq(seq))  # (B, L, d)
        tokens = torch.cat([first[:, None], rest], dim=1) + self.type_emb  # (B, 1+L, d)
        keep = torch.cat([torch.ones_like(p), mask & p], dim=1)  # (B, 1+L)
        return self.drop(self.norm(tokens)), keep


class CrossModalLayer(nn.Module):
    """BERT-style (post-LN) layer whose query stream (text) attends to itself, then to the other modalities.

    q  = LN(x + SelfAttn(x, x))
    q' = LN(q + CrossAttn(q, ctx))          ctx = [voice tokens ; face tokens]
    y  = LN(q' + W2 GELU(W1 q'))
    Shapes: x (B, Lq, d), ctx (B, Lc, d); masks True = attend. Returns y (B, Lq, d).
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * width, width))
        self.norms = nn.ModuleList([nn.LayerNorm(width) for _ in range(3)])
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor
                ) -> torch.Tensor:
        h, _ = self.self_attn(x, x, x, key_padding_mask=~x_mask, need_weights=False)
        x = self.norms[0](x + self.drop(h))
        h, _ = self.cross_attn(x, ctx, ctx, key_padding_mask=~ctx_mask, need_weights=False)
        x = self.norms[1](x + self.drop(h))
        return self.norms[2](x + self.drop(self.ffn(x)))


class AttentionFusion(nn.Module):
    """Attention pooling over modality summaries; returns the weights for inspection.

    a_m = v^T tanh(W s_m), alpha = softmax over present modalities, z = sum_m alpha_m s_m.
    Shapes: s (B, M, d), present (B, M) bool -> z (B, d), alpha (B, M) (0 for absent modalities).
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, s: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.score(s).squeeze(-1)  # (B, M)
        a = a.masked_fill(~present, float("-inf"))
        alpha = torch.softmax(a, dim=-1)  # (B, M)
        return (alpha.unsqueeze(-1) * s).sum(1), alpha  # (B, d), (B, M)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum_t m_t x_t / sum_t m_t: x (B, L, d), mask (B, L) -> (B, d)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class GatedCrossAttention(nn.Module):
    """Gated cross-attention block inserted after a text-encoder layer (MAG-BERT / MulT / Flamingo style).

    x' = x  + tanh(a) * CrossAttn(LN(x), ctx, ctx)
    y  = x' + tanh(b) * W2 GELU(W1 LN(x'))
    with scalar gates a, b initialised at 0, so at initialisation y = x and the encoder is the text model.
    Shapes: x (B, Lq, H) token states, ctx (B, Lc, H) projected voice and face tokens, ctx_mask (B, Lc) bool
    (True = attend; every row keeps at least one key: a present frame or a learned missing token).
    Returns y (B, Lq, H).
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_ffn = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * width, width))
        self.gate_attn = nn.Parameter(torch.zeros(()))  # a
        self.gate_ffn = nn.Parameter(torch.zeros(()))  # b
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.attn(self.norm_q(x), ctx, ctx, key_padding_mask=~ctx_mask, need_weights=False)  # (B, Lq, H)
        x = x + torch.tanh(self.gate_attn) * self.drop(h)
        return x + torch.tanh(self.gate_ffn) * self.drop(self.ffn(self.norm_ffn(x)))  # (B, Lq, H)
