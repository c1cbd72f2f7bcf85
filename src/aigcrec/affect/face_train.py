"""Training a FER2013 face network ourselves: ``face-net`` (default) or the packaged ``fer-cnn`` architecture.

``face-net`` (``encoders/face_net.py``, VGG-style, width ``width``), read back by ``FaceEncoder("face-net:<file>")``.
Recipe (the defaults of :class:`FaceTrainConfig`): from scratch, unweighted CE with label smoothing 0.1,
AdamW (lr 2e-3, wd 5e-4) with a one-cycle schedule (20 % warm-up), batch 128; augmentation per image on the
fly, one random affine map through ``affine_grid`` / ``grid_sample`` (border padding): rotation +-``rotate_deg``,
zoom +-``scale``, shift +-``translate`` (fraction of half the side) and a horizontal flip (p = 0.5).
Training runs under ``torch.autocast("cpu", bfloat16)`` when ``bf16`` is set and the CPU has AMX tiles or
AVX512-BF16 (``torch.cpu._is_amx_tile_supported()`` / ``_is_avx512_bf16_supported()``), else in fp32; with
``channels_last`` in NHWC layout; on ``threads`` torch threads. Dev accuracy after each epoch and all
features are computed in fp32 (eval mode, deterministic); the best dev epoch is kept.

``fer-cnn``: the network of ``facial-emotion-recognition`` (see ``encoders/fer_cnn.py``), read back by
``FaceEncoder("fer-cnn:<weights.pt>")``; it starts from the packaged weights (``init_pretrained``) or from
scratch; its 7 outputs stay in FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral). Training:
CE on the pre-sigmoid logits, class weights w_c = (n / (C n_c))^0.5 (mean 1), AdamW with a one-cycle schedule
(15 % warm-up); augmentation: horizontal flip (p = 0.5) and a random shift of up to ``shift`` pixels (edge padding).

Input of both: x = grey / 127.5 - 1, (B, 1, 48, 48).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from aigcrec.affect.config import FaceTrainConfig
from aigcrec.affect.encoders.fer_cnn import FER_TO_EMOTIONS, load_fer_cnn
from aigcrec.training import fit_loop, module_state, torch_threads
from aigcrec.affect.encoders.face_net import FaceNet, save_face_net
from aigcrec.data.fer2013 import load_fer2013

log = logging.getLogger("aigcrec.affect")

EMOTION_TO_FER: np.ndarray = np.argsort(FER_TO_EMOTIONS)
"""index in EMOTIONS -> FER2013 class index (the network's output order)."""


def augment(images: np.ndarray, rng: np.random.Generator, shift: int) -> np.ndarray:
    """(B, S, S) uint8 -> (B, S, S) uint8: random horizontal flips and shifts of up to ``shift`` px."""
    b, s, _ = images.shape
    out = np.where(rng.random(b)[:, None, None] < 0.5, images[:, :, ::-1], images)
    if shift <= 0:
        return np.ascontiguousarray(out)
    padded = np.pad(out, ((0, 0), (shift, shift), (shift, shift)), mode="edge")
    dx, dy = rng.integers(0, 2 * shift + 1, size=(2, b))
    return np.stack([padded[i, dy[i]: dy[i] + s, dx[i]: dx[i] + s] for i in range(b)])


def to_input(images: np.ndarray):
    """(B, 48, 48) uint8 -> (B, 1, 48, 48) float tensor in [-1, 1] (the package's normalisation)."""
    return torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1) / 127.5 - 1.0


def logits_of(net, x):
    """Pre-sigmoid class scores (B, 7) in FER order."""
    h = net.conv_4(net.conv_3(net.conv_2(net.conv_1(x))))
    return net.linear[2](net.linear[1](net.linear[0](h.reshape(h.shape[0], -1))))


def accuracy(net, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of ``net`` on (N, 48, 48) uint8 images with labels in EMOTIONS order."""
    net.eval()
    pred = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            pred.append(logits_of(net, to_input(images[start: start + batch_size])).argmax(1).numpy())
    return float(np.mean(np.concatenate(pred) == EMOTION_TO_FER[labels]))


def fit_epochs(net, n: int, cfg: FaceTrainConfig, permutation, batch_loss, dev_accuracy, pct_start: float,
               label: str) -> list[dict]:
    """What both networks share: AdamW with a one-cycle schedule over ``cfg.epochs`` epochs of ``n`` rows in
    batches of ``cfg.batch_size`` (``aigcrec.training.fit_loop``); ``permutation()`` gives each epoch's row
    order, ``batch_loss(idx)`` the loss of a batch, ``dev_accuracy()`` the score after each epoch. The best
    epoch's weights are restored at the end; returns the per-epoch history. A progress bar counts the epochs."""
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, pct_start=pct_start,
                                                total_steps=cfg.epochs * math.ceil(n / cfg.batch_size))
    history: list[dict] = []

    def batches(epoch: int):
        order = permutation()
        return (order[start: start + cfg.batch_size] for start in range(0, n, cfg.batch_size))

    def record(e) -> None:
        acc = e.metrics["dev_accuracy"]
        history.append({"epoch": e.epoch + 1, "train_loss": e.train_loss, "dev_accuracy": acc,
                        "seconds": round(e.seconds, 1)})
        log.info("%s epoch %d: loss %.4f, dev accuracy %.4f (%.0fs)", label, e.epoch + 1, e.train_loss, acc,
                 e.seconds)

    fit_loop(epochs=cfg.epochs, batches=batches, loss=batch_loss, size=len, optimizer=opt, scheduler=sched,
             before_epoch=net.train, evaluate=lambda: {"dev_accuracy": dev_accuracy()}, monitor="dev_accuracy",
             state=module_state(net), on_epoch=record, progress_label=f"{label}: epochs")
    return history


def train_fer_cnn(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, dev_y: np.ndarray,
                  cfg: FaceTrainConfig, seed: int):
    """Train the CNN on (N, 48, 48) uint8 faces with labels in EMOTIONS order; returns (network, history)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = load_fer_cnn(pretrained=cfg.init_pretrained)
    y = torch.tensor(EMOTION_TO_FER[np.asarray(train_y)], dtype=torch.long)
    counts = np.bincount(y.numpy(), minlength=7).astype(np.float64)
    w = np.sqrt(len(y) / (7 * np.maximum(counts, 1.0)))
    weight = torch.tensor(w / w.mean(), dtype=torch.float32)

    def batch_loss(idx):
        x = to_input(augment(train_x[idx], rng, cfg.shift))
        return torch.nn.functional.cross_entropy(logits_of(net, x), y[idx], weight=weight,
                                                 label_smoothing=cfg.label_smoothing)

    history = fit_epochs(net, len(y), cfg, lambda: rng.permutation(len(y)), batch_loss,
                         lambda: accuracy(net, dev_x, dev_y), 0.15, f"FER CNN seed {seed}")
    return net.eval(), history


def bf16_supported() -> bool:
    """True when this CPU runs bfloat16 matmuls natively (AMX tiles or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def affine_augment(x, gen, rotate_deg: float, scale: float, translate: float):
    """(B, 1, S, S) float -> same shape: per image a random rotation (+-rotate_deg), zoom (+-scale), shift
    (+-translate of half the side) and horizontal flip (p = 0.5), one ``grid_sample`` (bilinear, border padding).
    ``gen``: a torch.Generator (the randomness of the training run)."""

    b = x.shape[0]
    angle = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(rotate_deg)
    zoom = 1 + (torch.rand(b, generator=gen) * 2 - 1) * scale
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * translate
    theta = torch.zeros(b, 2, 3)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def face_net_probs(net, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, 7), EMOTIONS order, of a FaceNet on (N, 48, 48) uint8 images (fp32, eval mode)."""
    net.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            out.append(net(to_input(images[start: start + batch_size])).float().softmax(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)


def train_face_net(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, dev_y: np.ndarray,
                   cfg: FaceTrainConfig, seed: int):
    """Train a FaceNet on (N, 48, 48) uint8 faces with labels in EMOTIONS order; returns (network, history)."""


    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = FaceNet(cfg.width)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    bf16 = cfg.bf16 and bf16_supported()
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    log.info("face-net width %d: %d train faces, %d epochs, %s, %d threads", cfg.width, len(y), cfg.epochs,
             "bf16 autocast" if bf16 else "fp32", torch.get_num_threads())

    def batch_loss(idx):
        x = affine_augment(to_input(train_x[idx.numpy()]), gen, cfg.rotate_deg, cfg.scale, cfg.translate)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x.contiguous(memory_format=fmt))
        return F.cross_entropy(logits.float(), y[idx], label_smoothing=cfg.label_smoothing)

    history = fit_epochs(net, len(y), cfg, lambda: torch.randperm(len(y), generator=gen), batch_loss,
                         lambda: float(np.mean(face_net_probs(net, dev_x).argmax(1) == np.asarray(dev_y))),
                         cfg.warmup, f"face-net seed {seed}")
    return net.to(memory_format=torch.contiguous_format).eval(), history


Splits = dict[str, tuple[np.ndarray, np.ndarray]]
"""{"train", "dev", "test"} -> ((N, 48, 48) uint8 faces, labels in EMOTIONS order)."""


def fer2013_splits(root: Path) -> Splits:
    """FER2013's train / val / test at ``root`` as face-training splits."""

    fer = load_fer2013(root)
    return {name: fer.subset(split) for split, name in (("train", "train"), ("val", "dev"), ("test", "test"))}


def trained_weights(splits: Callable[[], Splits], cfg: FaceTrainConfig, seed: int, path: Path) -> Path:
    """``path``, trained on ``splits()["train"]`` (best ``dev`` epoch) if absent: a face-net checkpoint
    (``network: face-net``) or a state dict for ``fer-cnn:<path>``; ``path.json`` holds the config, the
    per-epoch dev history, the best epoch, its test accuracy, the split sizes and the training time."""
    if path.is_file():
        log.info("trained %s from cache %s", cfg.network, path)
        return path
    data = splits()
    for name in ("train", "dev", "test"):
        x, y = data[name]
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"face training: expected a non-empty {name} split with one label per face, "
                             f"got {len(x)} faces and {len(y)} labels")
    t0 = time.perf_counter()
    with torch_threads(cfg.threads):
        train = train_face_net if cfg.network == "face-net" else train_fer_cnn
        net, history = train(*data["train"], *data["dev"], cfg, seed)
    train_s = time.perf_counter() - t0
    test_x, test_y = data["test"]
    if cfg.network == "face-net":

        test_acc = float(np.mean(face_net_probs(net, test_x).argmax(1) == test_y))
        save_face_net(net, path)
    else:
        test_acc = accuracy(net, test_x, test_y)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".partial.pt")
        torch.save(net.state_dict(), tmp)
        tmp.replace(path)
    best = max(history, key=lambda h: h["dev_accuracy"])
    log.info("trained %s in %.0fs: best dev accuracy %.4f (epoch %d), test accuracy %.4f", cfg.network, train_s,
             best["dev_accuracy"], best["epoch"], test_acc)
    path.with_suffix(".json").write_text(json.dumps(
        {"network": cfg.network, "config": cfg.model_dump(), "seed": seed, "train_seconds": round(train_s, 1),
         "bf16": cfg.network == "face-net" and cfg.bf16 and bf16_supported(), "best_epoch": best["epoch"],
         "best_dev_accuracy": best["dev_accuracy"], "test_accuracy": test_acc,
         "faces": {name: len(y) for name, (_, y) in data.items()}, "history": history},
        indent=2), encoding="utf-8")
    return path
