"""Training the FER2013 CNN ourselves (the network of ``facial-emotion-recognition``, see ``encoders/fer_cnn.py``).

Same architecture as the packaged model, so ``FaceEncoder("fer-cnn:<weights.pt>")`` reads the result; it starts
from the packaged weights (``init_pretrained``) or from scratch. Input x = grey / 127.5 - 1, (B, 1, 48, 48);
the 7 outputs stay in FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral) as in the package.

Training: CE on the pre-sigmoid logits, class weights w_c = (n / (C n_c))^0.5 (mean 1), AdamW with a one-cycle
schedule; augmentation per image: horizontal flip (p = 0.5) and a random shift of up to ``shift`` pixels (edge
padding), both on the fly in memory. After each epoch the dev accuracy is measured; the best epoch is kept.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from pathlib import Path

import numpy as np

from aigcrec.affect.config import FaceTrainConfig
from aigcrec.affect.encoders.fer_cnn import FER_TO_EMOTIONS, load_fer_cnn

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
    import torch

    return torch.from_numpy(np.ascontiguousarray(images)).float().unsqueeze(1) / 127.5 - 1.0


def logits_of(net, x):
    """Pre-sigmoid class scores (B, 7) in FER order."""
    h = net.conv_4(net.conv_3(net.conv_2(net.conv_1(x))))
    return net.linear[2](net.linear[1](net.linear[0](h.reshape(h.shape[0], -1))))


def accuracy(net, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of ``net`` on (N, 48, 48) uint8 images with labels in EMOTIONS order."""
    import torch

    net.eval()
    pred = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            pred.append(logits_of(net, to_input(images[start: start + batch_size])).argmax(1).numpy())
    return float(np.mean(np.concatenate(pred) == EMOTION_TO_FER[labels]))


def train_fer_cnn(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, dev_y: np.ndarray,
                  cfg: FaceTrainConfig, seed: int):
    """Train the CNN on (N, 48, 48) uint8 faces with labels in EMOTIONS order; returns (network, history)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = load_fer_cnn(pretrained=cfg.init_pretrained)
    y = torch.tensor(EMOTION_TO_FER[np.asarray(train_y)], dtype=torch.long)
    counts = np.bincount(y.numpy(), minlength=7).astype(np.float64)
    w = np.sqrt(len(y) / (7 * np.maximum(counts, 1.0)))
    weight = torch.tensor(w / w.mean(), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(len(y) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    history, best, best_state = [], -1.0, None
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        order = rng.permutation(len(y))
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start: start + cfg.batch_size]
            x = to_input(augment(train_x[idx], rng, cfg.shift))
            loss = torch.nn.functional.cross_entropy(logits_of(net, x), y[idx], weight=weight,
                                                     label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = accuracy(net, dev_x, dev_y)
        history.append({"epoch": epoch + 1, "train_loss": total / len(y), "dev_accuracy": acc,
                        "seconds": round(time.perf_counter() - t0, 1)})
        log.info("FER CNN seed %d epoch %d: loss %.4f, dev accuracy %.4f (%.0fs)", seed, epoch + 1,
                 total / len(y), acc, time.perf_counter() - t0)
        if acc > best:
            best, best_state = acc, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net.eval(), history


def trained_weights(root: Path, cfg: FaceTrainConfig, seed: int, path: Path) -> Path:
    """``path`` (a state dict for ``fer-cnn:<path>``), trained on FER2013's train split at ``root`` if absent."""
    import torch

    from aigcrec.data.fer2013 import load_fer2013

    if path.is_file():
        log.info("trained FER CNN from cache %s", path)
        return path
    fer = load_fer2013(root)
    net, history = train_fer_cnn(*fer.subset("train"), *fer.subset("val"), cfg, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.pt")
    torch.save(net.state_dict(), tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps({"config": cfg.model_dump(), "seed": seed, "history": history},
                                                    indent=2), encoding="utf-8")
    return path
