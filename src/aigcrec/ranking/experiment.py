"""One experiment = a dataset, a split, a named model variant and a seed -> metrics.

``VARIANTS`` names every model the benchmark and the demo train: UMAIR-FPS, its ablations and the
baselines, each as (model kind, overrides of ``ModelConfig``; a "train" entry overrides ``TrainConfig``).
``umair_fps_paper`` is the authors' recipe; ``WALK`` walks from it to ``umair_fps`` one switch at a time.
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

# The authors' recipe (DESIGN.md section 2): z = [e_MM; e_u], stacked DCN-Mix (rank 32, 4 experts, 2 layers,
# tanh) -> DNN [64, 32, 16] (dropout 0.5), wide LR logit, UMCM without the 1/sqrt(D) scale, no content profile,
# match terms, modality dropout, affect, field crosses or FM cross; Adam 1e-3, batch 128, 1 epoch, no id dropout.
# Every field is set, so a change of the defaults does not leak into it. "train" overrides ``TrainConfig``.
PAPER_MODEL: dict[str, Any] = {
    "embedding_dim": 8, "tower_units": [128, 64], "modality_dim": 64, "modality_dropout": 0.0,
    "contribution": "attention", "attention_scale": False, "cross_kind": "mix", "cross_layers": 2, "low_rank": 32,
    "num_experts": 4, "structure": "stacked", "dnn_units": [64, 32, 16], "dropout": 0.5,
    "use_modalities": ["e_sem", "e_sty", "e_tsem"], "use_affect": False, "use_history": False, "match": False,
    "cross_fields": False, "fm_cross": False}
PAPER_TRAIN: dict[str, Any] = {"batch_size": 128, "lr": 1e-3, "weight_decay": 0.0, "max_epochs": 1, "id_dropout": 0.0}
# The walk from the paper's recipe to ``umair_fps``, one switch at a time (cumulative): (variant, what it adds,
# model overrides, train overrides). "default" = the base config's value (``umair_fps``'s).
WALK: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("umair_fps_paper", "the authors' recipe, 1 epoch", {}, {}),
    ("umair_fps_paper_val", "epochs chosen on validation AUC (max_epochs / patience of the base config)", {},
     {"max_epochs": "default"}),
    ("umair_fps_walk_batch", "+ the base batch size (1024)", {}, {"batch_size": "default"}),
    ("umair_fps_walk_id_dropout", "+ item-id dropout in training", {}, {"id_dropout": "default"}),
    ("umair_fps_walk_scale", "+ 1/sqrt(D) in UMCM", {"attention_scale": "default"}, {}),
    ("umair_fps_walk_parallel", "+ parallel cross network and DNN", {"structure": "default"}, {}),
    ("umair_fps_walk_mod_dropout", "+ modality dropout", {"modality_dropout": "default"}, {}),
    ("umair_fps_walk_cross_fields", "+ field embeddings in z", {"cross_fields": "default"}, {}),
    ("umair_fps_walk_history", "+ content profile", {"use_history": "default"}, {}),
    ("umair_fps_walk_match", "+ match terms (= umair_fps without the affect context)", {"match": "default"}, {}),
]


def _walk_variants() -> dict[str, tuple[str, dict[str, Any]]]:
    out, model, train = {}, dict(PAPER_MODEL), dict(PAPER_TRAIN)
    for name, _, m_over, t_over in WALK:
        model.update(m_over)
        train.update(t_over)
        out[name] = ("umair_fps", {**model, "train": dict(train)})
    return out


VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "umair_fps": ("umair_fps", {}),
    **_walk_variants(),
    # the contribution mechanisms none (concatenation) / SENet / mixture on the paper's recipe with
    # validation-chosen epochs (attention: umair_fps_paper_val); on ours: umair_fps_concat / _senet / _mixture
    **{f"umair_fps_paper_{mech}": ("umair_fps", {**PAPER_MODEL, "contribution": kind,
                                                  "train": {**PAPER_TRAIN, "max_epochs": "default"}})
       for mech, kind in (("none", "concat"), ("senet", "senet"), ("mixture", "mixture"))},
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


def _resolve(over: dict[str, Any], base) -> dict[str, Any]:
    """``over`` with every "default" replaced by ``base``'s value of that field."""
    return {k: getattr(base, k) if v == "default" else v for k, v in over.items()}


def variant_train(name: str, base: TrainConfig) -> TrainConfig:
    """The training config of variant ``name``: ``base`` with the variant's "train" overrides (the paper's
    recipe trains with batch 128 for 1 epoch)."""
    if name not in VARIANTS:
        return base  # peers, popularity: the base config
    over = VARIANTS[name][1].get("train")
    return base if not over else base.model_copy(update=_resolve(over, base))


def variant_config(name: str, base: ModelConfig) -> tuple[str, ModelConfig]:
    """(model kind, config) of a named variant built on ``base``."""
    if name not in VARIANTS:
        raise ValueError(f"unknown model variant {name!r}; expected one of {sorted(VARIANTS)}")
    kind, over = VARIANTS[name]
    over = dict(over)
    over.pop("train", None)
    over = _resolve(over, base)
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
                     variant_train(name, train_cfg), seed=seed, on_epoch=on_epoch)
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
