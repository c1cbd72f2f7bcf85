"""One experiment = a dataset, a split, a named model variant and a seed -> metrics.

``VARIANTS`` names every model the benchmark and the demo train: UMAIR-FPS, its ablations and the
baselines, each as (model kind, overrides of ``ModelConfig``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aigcrec.logs import progress
from aigcrec.metrics import auc, gauc, logloss
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.config import ModelConfig, TrainConfig
from aigcrec.ranking.data import RankingData, add_history, warm_split
from aigcrec.ranking.features import EncodedBatch, FeatureSpec
from aigcrec.ranking.models import Ranker, build_model
from aigcrec.ranking.trainer import FitResult, Popularity, fit, predict

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "umair_fps": ("umair_fps", {}),
    "umair_fps_paper": ("umair_fps", {"cross_fields": False}),
    "umair_fps_no_style": ("umair_fps", {"drop_modality": "e_sty"}),
    "umair_fps_no_image": ("umair_fps", {"drop_modality": "e_sem"}),
    "umair_fps_no_text": ("umair_fps", {"drop_modality": "e_tsem"}),
    "umair_fps_no_visual": ("umair_fps", {"drop_modality": ["e_sem", "e_sty"]}),
    "umair_fps_concat": ("umair_fps", {"contribution": "concat"}),
    "umair_fps_senet": ("umair_fps", {"contribution": "senet"}),
    "umair_fps_mixture": ("umair_fps", {"contribution": "mixture"}),
    "umair_fps_no_dcn": ("umair_fps", {"cross_layers": 0}),
    "umair_fps_no_affect": ("umair_fps", {"use_affect": False}),
    "umair_fps_no_history": ("umair_fps", {"use_history": False}),
    "umair_fps_no_match": ("umair_fps", {"match": False}),
    "dcnv2": ("dcnv2", {"structure": "parallel"}),
    "dcn": ("dcn", {"structure": "parallel"}),
    "deepfm": ("deepfm", {}),
    "xdeepfm": ("xdeepfm", {}),
    "fm": ("fm", {}),
    "lr": ("lr", {}),
    "popularity": ("popularity", {}),
}
ABLATIONS = ["umair_fps", "umair_fps_no_style", "umair_fps_no_image", "umair_fps_no_text", "umair_fps_concat",
             "umair_fps_no_dcn", "umair_fps_no_affect", "umair_fps_no_history", "umair_fps_no_match"]


def variant_config(name: str, base: ModelConfig) -> tuple[str, ModelConfig]:
    """(model kind, config) of a named variant built on ``base``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; expected one of {sorted(VARIANTS)}")
    kind, over = VARIANTS[name]
    over = dict(over)
    drop = over.pop("drop_modality", [])
    drop = [drop] if isinstance(drop, str) else drop
    cfg = base.model_copy(update=over)
    if drop:
        cfg = cfg.model_copy(update={"use_modalities": [m for m in cfg.use_modalities if m not in drop]})
    return kind, cfg


def ctr_metrics(y: np.ndarray, p: np.ndarray, users: np.ndarray) -> dict[str, float]:
    """AUC, logloss and gAUC of one prediction set."""
    return {"auc": auc(y, p), "logloss": logloss(y, p), "gauc": gauc(users, y, p)}


@dataclass
class Prepared:
    """A split encoded once: the fitted spec, encoded parts, labels, user ids and the vector tables."""

    data: RankingData
    spec: FeatureSpec
    parts: dict[str, EncodedBatch]
    labels: dict[str, np.ndarray]
    users: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    tables: dict[str, np.ndarray]


def prepare(data: RankingData, rows: dict[str, np.ndarray], history_len: int | None = None) -> Prepared:
    """Fit the spec on the training rows and encode train / val / test; ``history_len`` (``ModelConfig``'s)
    sets how many earlier positives the ``history`` field keeps (None: as the dataset declares it)."""
    data.validate()
    if history_len is not None:
        data = replace(data, fields=[replace(f, max_len=history_len) if f.kind == "history" else f
                                     for f in data.fields])
    history = [f for f in data.fields if f.kind == "history"]
    if history:  # the users' earlier positives, from the training rows only
        data = replace(data, frame=add_history(data.frame, rows["train"], history[0].max_len, history[0].column))
    frame = data.frame
    spec = FeatureSpec([type(f)(**vars(f)) for f in data.fields]).fit(frame.iloc[rows["train"]], data.vectors)
    parts, labels, users = {}, {}, {}
    for part in ("train", "val", "test"):
        sub = frame.iloc[rows[part]]
        parts[part] = spec.encode(sub)
        labels[part] = sub["label"].to_numpy(np.float32)
        users[part] = sub["user_id"].astype(str).to_numpy()
    tables = {f.name: spec.vector_table(f, data.vectors) for f in spec.vectors}
    return Prepared(data, spec, parts, labels, users, rows, tables)


@dataclass
class RunResult:
    metrics: dict[str, float]
    model: Ranker | Popularity
    fit: FitResult | None
    test_probs: np.ndarray


def run_variant(prep: Prepared, name: str, base: ModelConfig, train_cfg: TrainConfig, seed: int,
                on_epoch=None) -> RunResult:
    """Train variant ``name`` with ``seed`` on ``prep`` and score its test part (AUC, logloss, gAUC)."""
    kind, cfg = variant_config(name, base)
    if kind == "popularity":
        frame = prep.data.frame
        model = Popularity().fit(frame["item_id"].iloc[prep.rows["train"]], prep.labels["train"])
        probs = model.predict(frame["item_id"].iloc[prep.rows["test"]])
        result = None
    else:
        torch.manual_seed(seed)  # the initial weights depend on the seed only
        model = build_model(kind, prep.spec, cfg, prep.tables)
        result = fit(model, prep.parts["train"], prep.labels["train"], prep.parts["val"], prep.labels["val"],
                     train_cfg, seed=seed, on_epoch=on_epoch)
        probs = predict(model, prep.parts["test"])
    metrics = ctr_metrics(prep.labels["test"], probs, prep.users["test"])
    if result is not None:
        metrics.update(train_samples_per_s=result.train_samples_per_s, best_epoch=float(result.best_epoch),
                       val_auc=result.best_val_auc)
    return RunResult(metrics, model, result, probs)


def train_and_save(data, model: str, cfg, dest: Path, runner=None, meta: dict | None = None,
                   rows: dict | None = None) -> dict[str, float]:
    """``aigcrec train ranker`` after loading ``data``: split (``rows``, default the warm split), train
    ``model`` with a progress bar, save the bundle to ``dest/ranker`` and its test metrics to
    ``dest/metrics.json``; return the metrics.

    ``runner``: ``run_variant`` (default) or a Ray DDP runner with the same signature."""
    prep = prepare(data, rows if rows is not None else warm_split(data.frame), cfg.ranking.model.history_len)
    with progress() as bar:
        task = bar.add_task(f"train {model}", total=cfg.ranking.train.max_epochs)
        result = (runner or run_variant)(prep, model, cfg.ranking.model, cfg.ranking.train, cfg.seed,
                                         on_epoch=lambda e, row: bar.advance(task))
    meta = {**(meta or {}), "interactions": len(data.frame), "seed": cfg.seed, "variant": model,
            "train_config": cfg.ranking.train.model_dump(), "test_metrics": result.metrics,
            "history": result.fit.history}
    bundle = RankerBundle.from_training(model, result.model, data.frame.iloc[prep.rows["train"]], meta)
    bundle.save(dest / "ranker")
    (dest / "metrics.json").write_text(json.dumps(result.metrics, indent=1), encoding="utf-8")
    return result.metrics
