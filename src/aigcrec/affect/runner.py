"""One entry point per benchmark task (what ``aigcrec benchmark affect`` runs)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from aigcrec.affect.benchmark import fusion_benchmark, single_modality_benchmark, split_data, write_result
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.model import Prediction
from aigcrec.affect.tasks import (
    face_emotion_data,
    fusion_data,
    intent_data,
    oos_metrics,
    oos_threshold,
    text_emotion_data,
    world_paper_data,
)
from aigcrec.affect.sessions import intent_labels

log = logging.getLogger("aigcrec.affect")


def fer_cnn_prediction(data: AffectData) -> Prediction:
    """The face network as is (packaged or trained by us): its 7 class scores (last 7 pooled values: the FER
    CNN's sigmoid outputs, face-net's softmax) normalised to sum to 1."""
    enc = data.features["face"]
    scores = enc.pooled[:, -7:].astype(np.float64) + 1e-9
    probs = scores / scores.sum(1, keepdims=True)
    n = len(data)
    return Prediction(probs, np.ones((n, 1)), enc.pooled, np.ones((n, 1)), ["face"])


def run_benchmark(task: str, data_dir: Path, cfg: AffectConfig, seeds: list[int], out: Path, cache: Path,
                  recipe: dict | None = None) -> Path:
    """Run ``task`` on ``data_dir`` over ``seeds``; write ``out/affect.json`` and ``affect.md``.

    ``cfg`` is used as given; ``recipe`` (the overlay :func:`aigcrec.affect.recipes.task_config` applied to
    make it, or None) is recorded in affect.json.
    """
    torch.set_num_threads(cfg.mmei.threads)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if task == "fusion":

        data, split, problems = fusion_data(data_dir, cfg, cache)
        problems.to_csv(out / "problems.csv", index=False)
        train, dev, test = split_data(data, split)
        paper = (split_data(world_paper_data(data_dir, data, cfg), split) if cfg.mmei.paper.in_fusion_benchmark
                 else None)
        result = fusion_benchmark(train, dev, test, cfg, intent_labels(cfg), seeds, paper=paper)
        result["counts"] = {"train": len(train), "dev": len(dev) if dev is not None else 0, "test": len(test),
                            **{f"test_{m}_present": int(e.present.sum()) for m, e in test.features.items()}}
    elif task == "face-emotion":
        d = face_emotion_data(data_dir, cfg, cache)
        ft = cfg.encoders.face_train  # the face network as is (its own class scores)
        cnn = f"{ft.network}-trained" if ft.enabled else "fer-cnn-pretrained"
        result = single_modality_benchmark(task, "face", lambda seed: d, cfg, [], seeds,
                                           fixed={cnn: fer_cnn_prediction})
    elif task == "text-emotion":
        result = single_modality_benchmark(task, "text", text_emotion_data(data_dir, cfg, cache), cfg, [], seeds)
    elif task == "intent":
        splits, labels = intent_data(data_dir, cfg, cache)
        oos = labels.index("oos")

        def extra(model, test: AffectData, dev: AffectData) -> dict[str, float]:
            tau = oos_threshold(model.predict(dev).intent_probs, dev.intent, oos)
            return {**oos_metrics(model.predict(test).intent_probs, test.intent, oos, tau), "oos_threshold": tau}

        result = single_modality_benchmark(task, "text", splits, cfg, labels, seeds, head="intent", extra=extra)
    else:
        raise ValueError(f"expected a task in face-emotion, text-emotion, intent, fusion; got {task!r}")
    result["seeds"] = seeds
    result["data_dir"] = data_dir.name
    result["recipe"] = recipe
    result["config"] = cfg.model_dump()
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    path = write_result(result, out)
    log.info("wrote %s in %.1fs", path, result["wall_s"])
    return path
