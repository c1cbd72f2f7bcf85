"""Tensors of ``AffectData`` rows for the affect networks, shared by training and inference."""

from __future__ import annotations

import numpy as np
import torch

from aigcrec.affect.data import AffectData


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


def trim(batch: dict) -> dict:
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
