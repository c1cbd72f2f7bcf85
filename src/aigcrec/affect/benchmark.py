"""``aigcrec benchmark affect``: MMEI against unimodal, late-fusion and early-fusion baselines, over seeds.

Every model is trained with the same recipe (``MMEIConfig``: epochs, modality dropout, class weights,
early stopping and temperature scaling on dev) on the same cached features; metrics are computed on the
test split and summarised as mean and std over seeds (``affect.json`` + ``affect.md``).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES
from aigcrec.affect.reports import classification_report, summarize
from aigcrec.affect.model import AffectModel, LateFusion, MMEIModel, Prediction

log = logging.getLogger("aigcrec.affect")

SUBSETS: list[tuple[str, ...]] = [s for k in (1, 2, 3) for s in itertools.combinations(MODALITIES, k)]
"""The 7 non-empty modality subsets."""


def subset_name(subset: tuple[str, ...]) -> str:
    return "+".join(subset)


def dims_of(data: AffectData, modalities: tuple[str, ...] | list[str]) -> dict[str, tuple[int, int]]:
    return {m: (data.features[m].seq.shape[2], data.features[m].pooled.shape[1]) for m in modalities}


def train_models(train: AffectData, dev: AffectData, cfg: AffectConfig, intents: list[str], seed: int,
                 modalities: tuple[str, ...], encoders: dict[str, Any] | None = None, skip_mmei: bool = False,
                 paper: tuple[AffectData, AffectData | None] | None = None) -> dict[str, Any]:
    """MMEI and the baselines on ``modalities``: name -> a model with ``.predict(data) -> Prediction``.

    ``paper``: (train, dev) with ``mmei_paper``'s text input (``aigcrec.affect.tasks.with_paper_text``) to
    train ``mmei_paper`` too (it then predicts from data in that form)."""
    models: dict[str, Any] = {}
    t0 = time.perf_counter()
    if not skip_mmei:
        models["mmei"] = MMEIModel(dims_of(train, modalities), intents, cfg.mmei, encoders).fit(train, dev, seed)
        log.info("seed %d: mmei trained in %.1fs", seed, time.perf_counter() - t0)
    if paper is not None:
        t1 = time.perf_counter()
        models["mmei_paper"] = AffectModel("mmei_paper", dims_of(paper[0], modalities), intents, cfg.mmei,
                                           encoders).fit(paper[0], paper[1], seed)
        log.info("seed %d: mmei_paper trained in %.1fs", seed, time.perf_counter() - t1)
    unimodal = []
    for m in modalities:
        model = AffectModel("mlp", dims_of(train, (m,)), intents, cfg.mmei, encoders).fit(train, dev, seed)
        models[f"{m}-only"] = model
        unimodal.append(model)
    if len(modalities) > 1:
        models["late-fusion"] = LateFusion(unimodal)
        models["early-fusion"] = AffectModel("mlp", dims_of(train, modalities), intents, cfg.mmei,
                                             encoders).fit(train, dev, seed)
    log.info("seed %d: all models trained in %.1fs", seed, time.perf_counter() - t0)
    return models


def _head_report(pred: Prediction, data: AffectData, head: str, bins: int) -> dict[str, float] | None:
    y = data.emotion if head == "emotion" else data.intent
    probs = pred.emotion_probs if head == "emotion" else pred.intent_probs
    known = y >= 0
    if not known.any():
        return None
    return classification_report(probs[known], y[known], bins)


def fusion_benchmark(train: AffectData, dev: AffectData, test: AffectData, cfg: AffectConfig, intents: list[str],
                     seeds: list[int], on_seed: Callable[[int, dict[str, Any]], None] | None = None,
                     paper: tuple[AffectData, AffectData | None, AffectData] | None = None) -> dict[str, Any]:
    """Every model on every modality subset of ``test`` (emotion head) plus the intent head on all modalities.

    ``paper``: the same (train, dev, test) rows with ``mmei_paper``'s text input, to add its row."""
    runs: dict[str, dict[str, list]] = {}
    intent_runs: dict[str, list] = {}
    for seed in seeds:
        models = train_models(train, dev, cfg, intents, seed, MODALITIES, paper=paper[:2] if paper else None)
        for name, model in models.items():
            data = paper[2] if name == "mmei_paper" else test
            for subset in SUBSETS:
                rep = _head_report(model.predict(data.with_modalities(subset)), test, "emotion", cfg.ece_bins)
                runs.setdefault(name, {}).setdefault(subset_name(subset), []).append(rep)
            rep_i = _head_report(model.predict(data), test, "intent", cfg.ece_bins)
            if rep_i is not None:
                intent_runs.setdefault(name, []).append(rep_i)
        if on_seed is not None:
            on_seed(seed, models)
    full = subset_name(MODALITIES)
    return {
        "task": "fusion",
        "models": {name: summarize(r[full]) for name, r in runs.items()},
        "subsets": {name: {s: summarize(v) for s, v in r.items()} for name, r in runs.items()},
        "intent": {name: summarize(v) for name, v in intent_runs.items()},
    }


def single_modality_benchmark(task: str, modality: str, splits: Callable[[int], dict[str, AffectData]],
                              cfg: AffectConfig, intents: list[str], seeds: list[int], head: str = "emotion",
                              extra: Callable[[Any, AffectData, AffectData], dict[str, float]] | None = None,
                              fixed: dict[str, Callable[[AffectData], Prediction]] | None = None) -> dict[str, Any]:
    """MMEI's path for one modality against the pooled-vector baseline (and ``fixed`` untrained models).

    ``splits(seed)`` gives that seed's train / dev / test data (features of an encoder fine-tuned with that
    seed, or the same frozen features for every seed); ``extra(model, test, dev)`` adds task metrics.
    """
    runs: dict[str, list] = {}
    for seed in seeds:
        d = splits(seed)
        models = train_models(d["train"], d["dev"], cfg, intents, seed, (modality,))
        for name, model in models.items():
            rep = _head_report(model.predict(d["test"]), d["test"], head, cfg.ece_bins)
            if extra is not None:
                rep.update(extra(model, d["test"], d["dev"]))
            runs.setdefault(name, []).append(rep)
    test = splits(seeds[0])["test"]
    for name, predict in (fixed or {}).items():
        runs[name] = [_head_report(predict(test), test, head, cfg.ece_bins)]
    return {"task": task, "models": {name: summarize(r) for name, r in runs.items()}}


def environment() -> dict[str, Any]:
    """Where the numbers were measured (load average included: the machine is shared)."""

    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (float("nan"),) * 3
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "loadavg": [round(x, 2) for x in load],
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(result: dict[str, Any]) -> str:
    """The result as Markdown tables (models; modality subsets; intent head)."""
    cols = ["macro_f1", "weighted_f1", "accuracy", "nll", "ece"]
    if any("oos_recall_mean" in v for v in result["models"].values()):
        cols += ["in_scope_accuracy", "oos_recall"]
    lines = [f"# affect benchmark: {result['task']}", "", "| model | " + " | ".join(cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for name, v in result["models"].items():
        lines.append(f"| {name} | " + " | ".join(_pm(v, c) for c in cols) + " |")
    if "subsets" in result:
        names = [subset_name(s) for s in SUBSETS]
        lines += ["", "Emotion macro-F1 by modality subset (test):", "",
                  "| model | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for name, v in result["subsets"].items():
            lines.append(f"| {name} | " + " | ".join(_pm(v[s], "macro_f1") for s in names) + " |")
    if result.get("intent"):
        lines += ["", "Intent head (all modalities, test):", "", "| model | " + " | ".join(cols[:5]) + " |",
                  "|---" * 6 + "|"]
        for name, v in result["intent"].items():
            lines.append(f"| {name} | " + " | ".join(_pm(v, c) for c in cols[:5]) + " |")
    return "\n".join(lines) + "\n"


def _pm(v: dict[str, float], key: str) -> str:
    if f"{key}_mean" not in v:
        return "-"
    return f"{v[f'{key}_mean']:.4f} ± {v.get(f'{key}_std', 0.0):.4f}"


def write_result(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    result.setdefault("environment", environment())
    (out / "affect.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (out / "affect.md").write_text(markdown(result), encoding="utf-8")
    return out / "affect.json"


def split_data(data: AffectData, split: np.ndarray) -> tuple[AffectData, AffectData, AffectData]:
    """train / dev / test rows by a split column (world: train, dev, test)."""
    split = np.asarray(split).astype(str)
    parts = [data.take(np.flatnonzero(split == s)) for s in ("train", "dev", "test")]
    if len(parts[0]) == 0 or len(parts[2]) == 0:
        raise ValueError(f"expected train and test rows, got splits {sorted(set(split))}")
    return parts[0], parts[1] if len(parts[1]) else None, parts[2]
