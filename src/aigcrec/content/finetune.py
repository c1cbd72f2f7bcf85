"""Pretext fine-tuning of the image backbone (UMAIR-FPS): multi-label classification of the catalog's tags.

The backbone is split into a frozen prefix and a trainable tail (the last ``train_blocks`` blocks and
the head). Prefix outputs are computed once and cached, so each epoch only runs the tail:

``z = mean_{h,w} tail(prefix(x))`` (B, C_sem), ``logits = W z + b`` (B, T), loss = BCE-with-logits against
the multi-hot tags (B, T). The linear head is dropped afterwards; ``e_sem`` is ``z``. BatchNorm keeps its
running statistics (eval mode), so small batches do not disturb it. Early taps, hence ``e_sty``, are
untouched.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd
import torch

from aigcrec.content.config import ImageFinetuneConfig
from aigcrec.content.image_encoder import DualOutputImageEncoder
from aigcrec.content.images import ImageProblem, load_rgb, to_array
from aigcrec.content.onnx_runtime import onnx_function
from aigcrec.training import fit_loop

log = logging.getLogger("aigcrec.content")


class _Prefix(torch.nn.Module):
    """The frozen part of the backbone as a module (so it can be exported)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def tag_vocabulary(tags: pd.Series, min_count: int, exclude: list[str]) -> list[str]:
    """Tag texts used by at least ``min_count`` items, minus ``exclude``, sorted."""
    skip = {e.casefold() for e in exclude}
    counts = Counter(text for ts in tags for text in {t["text"] for t in ts})
    return sorted(t for t, c in counts.items() if c >= min_count and t.casefold() not in skip)


def finetune_image_encoder(encoder: DualOutputImageEncoder, items: pd.DataFrame, config: ImageFinetuneConfig,
                           seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict:
    """Fine-tune ``encoder`` in place on ``items`` (columns image_path, tags); return a summary.

    Items whose image cannot be read are skipped (counted in the summary). ``progress(step, total)`` is
    called after each prefix batch and each optimiser step.
    """
    if encoder.config.semantic_layer not in (-1, len(encoder.net.backbone.tap_channels) - 1):
        raise ValueError(f"fine-tuning trains the last tap; semantic_layer must be -1, got "
                         f"{encoder.config.semantic_layer}")
    for col in ("image_path", "tags"):
        if col not in items.columns:
            raise ValueError(f"expected a catalog frame with column {col!r}, got columns {list(items.columns)}")
    classes = tag_vocabulary(items["tags"], config.min_tag_count, config.exclude_tags)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 tags used by >= {config.min_tag_count} items, got {len(classes)}")
    col = {c: i for i, c in enumerate(classes)}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prefix, tail = encoder.net.backbone.split(config.train_blocks)
    encoder.net.eval()
    for p in encoder.net.parameters():
        p.requires_grad_(False)
    for p in tail.parameters():
        p.requires_grad_(True)

    # cache the frozen prefix's outputs (one pass over the images, in ONNX Runtime when it agrees)
    size = encoder.config.image_size
    prefix_module = _Prefix(prefix).eval()
    run = onnx_function(prefix_module, size, ["h"], encoder.config.threads) \
        if encoder.config.runtime == "onnx" else None
    cached, targets, skipped = [], [], 0
    rows = list(zip(items["image_path"], items["tags"]))
    total = -(-len(rows) // config.batch_size) * (1 + config.epochs)  # prefix batches + training steps
    step = 0
    for start in range(0, len(rows), config.batch_size):
        batch, ys = [], []
        for path, tags in rows[start:start + config.batch_size]:
            try:
                batch.append(to_array(load_rgb(path, encoder.config.max_pixels)[0], size))
            except (ImageProblem, TypeError):
                skipped += 1
                continue
            y = np.zeros(len(classes), np.float32)
            y[[col[t["text"]] for t in tags if t["text"] in col]] = 1.0
            ys.append(y)
        if batch:
            x = np.stack(batch)  # (B, 3, S, S)
            if run is not None:
                cached.append(torch.from_numpy(run(x)[0]))
            else:
                with torch.no_grad():
                    cached.append(prefix_module(torch.from_numpy(x)))  # (B, C, H, W)
            targets.append(torch.from_numpy(np.stack(ys)))
        step += 1
        if progress is not None:
            progress(step, total)
    feats, y_all = torch.cat(cached), torch.cat(targets)  # (N, C, H, W), (N, T)
    n = len(feats)
    head = torch.nn.Linear(encoder.net.backbone.tap_channels[-1], len(classes))
    opt = torch.optim.Adam([{"params": tail.parameters(), "lr": config.lr},
                            {"params": head.parameters(), "lr": config.lr * 10}])
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def batches(epoch: int):
        order = torch.from_numpy(rng.permutation(n))
        return (order[start:start + config.batch_size] for start in range(0, n, config.batch_size))

    def loss(idx):
        z = tail(feats[idx]).mean(dim=(2, 3))  # (B, C_sem)
        return loss_fn(head(z), y_all[idx])

    history: list[float] = []

    def record(e) -> None:
        history.append(e.train_loss)
        log.info("image fine-tuning epoch %d: BCE %.4f", len(history), history[-1])

    prefix_steps = step
    fit_loop(epochs=config.epochs, batches=batches, loss=loss, optimizer=opt, on_epoch=record,
             on_step=None if progress is None else (lambda s: progress(prefix_steps + s, total)))
    for p in encoder.net.parameters():
        p.requires_grad_(False)
    encoder.net.eval()
    encoder.refresh()
    return {"classes": classes, "n_images": n, "skipped_images": skipped, "loss_per_epoch": history}
