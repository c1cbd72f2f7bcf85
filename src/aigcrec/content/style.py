"""Style descriptors of early feature maps (Gram statistics) and the dual-output network.

For a feature map ``F`` of one image reshaped to (H·W, C), the Gram matrix is ``G = Fᵀ F / (H·W)`` (C×C).
Three reductions of the style taps ``F_1..F_L`` to one vector:

- ``rowmax`` (UMAIR-FPS): ``r_l = max_i G_l[i, :]`` (C-d), then ``e = max_l r_l`` when the taps have the
  same width C, else the ``r_l`` are concatenated.
- ``meanstd``: per channel mean ``μ_l`` and standard deviation ``σ_l`` (AdaIN statistics), concatenated.
- ``gram_triu``: the centred Gram ``Ĝ_l = (F - μ)ᵀ (F - μ) / (H·W)``, its upper triangle with the diagonal,
  signed square root ``sign(g)·sqrt(|g|)``, L2-normalised per tap, then concatenated. Centring removes the
  mean colour of each channel, so the vector describes texture more than palette.

Taps: ours (``ImageEncoderConfig.style_recipe = "ours"``) are ``style_layers`` (default efficientnet-lite0's
blocks 0, 1, 2: 16, 24 and 24 channels; only block 2 has a skip connection) with ``gram_triu``. The authors'
(``"paper"``) take the Gram matrices of same-width early residual outputs (ResNet's three first-stage
outputs), max over rows, max over layers: ``paper_style_taps`` picks the first run of consecutive
same-width taps of the backbone and the reduction is ``rowmax``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aigcrec.content.backbones import Backbone


def gram(f: torch.Tensor, centred: bool = False) -> torch.Tensor:
    """Gram matrix per image. f: (B, C, H, W) -> (B, C, C), ``G = Fᵀ F / (H·W)``."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)  # (B, C, N)
    if centred:
        flat = flat - flat.mean(dim=2, keepdim=True)
    return torch.bmm(flat, flat.transpose(1, 2)) / (h * w)  # (B, C, C)


def _signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.sqrt(x.abs() + 1e-12)


def style_vector(taps: list[torch.Tensor], reduction: str) -> torch.Tensor:
    """Reduce style taps [(B, C_l, H_l, W_l)] to (B, D) with ``reduction`` (see the module docstring)."""
    if reduction == "rowmax":
        rows = [gram(f).amax(dim=2) for f in taps]  # L x (B, C_l)
        if len({r.shape[1] for r in rows}) == 1:
            return torch.stack(rows, dim=0).amax(dim=0)  # (B, C)
        return torch.cat(rows, dim=1)  # (B, sum C_l)
    if reduction == "meanstd":
        stats = []
        for f in taps:
            flat = f.flatten(2)  # (B, C, N)
            mean = flat.mean(dim=2)
            std = (flat - mean.unsqueeze(2)).pow(2).mean(dim=2).add(1e-8).sqrt()
            stats += [mean, std]  # 2 x (B, C)
        return torch.cat(stats, dim=1)  # (B, 2 sum C_l)
    if reduction == "gram_triu":
        parts = []
        for f in taps:
            c = f.shape[1]
            # flat indices of the upper triangle, a constant in exported graphs (triu_indices is not in ONNX)
            iu = torch.from_numpy(np.flatnonzero(np.triu(np.ones((c, c), dtype=bool))))
            tri = _signed_sqrt(gram(f, centred=True).flatten(1)[:, iu])  # (B, C(C+1)/2)
            parts.append(tri / tri.norm(dim=1, keepdim=True).clamp_min(1e-8))
        return torch.cat(parts, dim=1)  # (B, sum C_l(C_l+1)/2)
    raise ValueError(f"unknown style reduction {reduction!r}: expected 'rowmax', 'meanstd' or 'gram_triu'")


def paper_style_taps(tap_channels: list[int], name: str = "backbone") -> list[int]:
    """The authors' style taps on another backbone: the first run of >= 2 consecutive taps of one width,
    skipping tap 0 (the stem). efficientnet-lite0 ([32, 16, 24, 24, 40, 112, 1280]): [2, 3] = blocks 1 and 2,
    the 24-channel stage at S/4 (its entry block 1 has no skip connection, block 2 is a residual output;
    EfficientNet's stages start without one, ResNet's with a projection shortcut)."""
    for i in range(1, len(tap_channels) - 1):
        if tap_channels[i] == tap_channels[i + 1]:
            j = i + 1
            while j + 1 < len(tap_channels) and tap_channels[j + 1] == tap_channels[i]:
                j += 1
            return list(range(i, j + 1))
    raise ValueError(f"{name}: no two consecutive feature taps have the same width (tap channels {tap_channels}), "
                     "so the paper's style recipe (max over same-width Gram rows and layers) does not apply; "
                     "use style_recipe 'ours'")


class DualOutputNet(nn.Module):
    """One backbone pass, two outputs.

    ``forward(x)``: x (B, 3, S, S) in [0, 1] -> ``(e_sem, e_sty)`` with
    ``e_sem = mean_{h,w} F_sem`` (B, C_sem) and ``e_sty = style_vector([F_l for l in style_layers])`` (B, D).

    >>> from aigcrec.content.backbones import build_backbone
    >>> net = DualOutputNet(build_backbone("random:tiny"), style_layers=[0, 1], semantic_layer=-1)
    >>> [t.shape for t in net(torch.rand(2, 3, 64, 64))]
    [torch.Size([2, 64]), torch.Size([2, 172])]
    """

    def __init__(self, backbone: Backbone, style_layers: list[int], semantic_layer: int,
                 reduction: str = "gram_triu", recipe: str = "ours") -> None:
        super().__init__()
        if recipe == "paper":  # the authors' taps and reduction replace style_layers / reduction
            style_layers, reduction = paper_style_taps(backbone.tap_channels, backbone.name), "rowmax"
        elif recipe != "ours":
            raise ValueError(f"unknown style recipe {recipe!r}: expected 'ours' or 'paper'")
        n = len(backbone.tap_channels)
        for i in [*style_layers, semantic_layer]:
            if not -n <= i < n:
                raise ValueError(f"tap index {i} is out of range for backbone {backbone.name!r} "
                                 f"with {n} taps (channels {backbone.tap_channels})")
        if not style_layers:
            raise ValueError("style_layers is empty: expected at least one early tap index")
        self.backbone = backbone
        self.style_layers = list(style_layers)
        self.semantic_layer = semantic_layer
        self.reduction = reduction

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        taps = self.backbone(x)
        e_sem = taps[self.semantic_layer].mean(dim=(2, 3))  # (B, C_sem)
        e_sty = style_vector([taps[i] for i in self.style_layers], self.reduction)  # (B, D)
        return e_sem, e_sty
