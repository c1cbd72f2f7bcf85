"""Demo stage: train MMEI on the world's affect sessions, calibrate on dev, evaluate on test, and hand the
ranker one affect-context row per session (``ctx.artifacts['affect_context']``)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from aigcrec.affect.benchmark import SUBSETS, split_data, subset_name, train_models
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.encoders.base import MODALITIES
from aigcrec.affect.reports import classification_report, confusion
from aigcrec.affect.model import AffectModel
from aigcrec.data.affect_context import write_affect_context
from aigcrec.data.schemas import EMOTIONS
from aigcrec.affect.predictor import AffectPredictor
from aigcrec.affect.sessions import predict_sessions
from aigcrec.affect.tasks import cache_key, fusion_data, load_world_sessions, train_world_mmei, with_world_face_net
from aigcrec.data.world import world_identity
from aigcrec.saved import config_file

log = logging.getLogger("aigcrec.affect")


def _subset_table(model: AffectModel, train: AffectData, dev: AffectData, test: AffectData, cfg: AffectConfig,
                  seed: int) -> list[dict[str, Any]]:
    """Emotion macro-F1 of MMEI and the baselines on every modality subset of ``test``."""
    models = {"mmei": model}
    models.update(train_models(train, dev, cfg, model.intents, seed, MODALITIES, skip_mmei=True))
    rows = []
    for name, m in models.items():
        row: dict[str, Any] = {"model": name}
        for subset in SUBSETS:
            p = m.predict(test.with_modalities(subset))
            row[subset_name(subset)] = classification_report(p.emotion_probs, test.emotion, cfg.ece_bins)["macro_f1"]
        rows.append(row)
    return rows


def _confusion_figure(y: np.ndarray, pred: np.ndarray):
    import matplotlib  # lazy: plotting libraries load only when a report draws a figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting libraries load only when a report draws a figure

    m = confusion(y, pred, len(EMOTIONS))
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(7), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(7), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(7):
        for j in range(7):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    return fig


def _face_encoder_text(face: str) -> str:
    """One sentence on the face encoder, with the training record (``<weights>.json``) of a network we trained."""
    name, _, weights = face.partition(":")
    meta = Path(weights).with_suffix(".json") if name in ("face-net", "fer-cnn") and weights else None
    if meta is None or not meta.is_file():
        return f"Face encoder: {face}."
    m = json.loads(meta.read_text(encoding="utf-8"))
    faces = m.get("faces", {})
    return (f"Face encoder: {name} trained on {faces.get('train', '?')} faces (best dev accuracy "
            f"{m['best_dev_accuracy']:.3f} at epoch {m['best_epoch']}; {m['test_accuracy']:.3f} on "
            f"{faces.get('test', '?')} test faces).")


def run(ctx) -> None:
    """Train (or reuse from the cache) MMEI on the world, report it and write the affect context."""

    world_dir = Path(ctx.artifacts["world_dir"])
    cache = ctx.cache_dir / "affect"
    with ctx.step("affect", "face network on the world's train faces"):
        cfg: AffectConfig = with_world_face_net(world_dir, ctx.config.affect, cache)
    with ctx.step("affect", "encode sessions (text, voice, face)"):
        data, split, problems = fusion_data(world_dir, cfg, cache)
    if len(problems):
        problems.to_csv(ctx.run_dir / "affect_problems.csv", index=False)
    train, dev, test = split_data(data, split)
    model_dir = cache / f"mmei-{cache_key(world_identity(world_dir), cfg.model_dump(), ctx.config.seed)}"
    with ctx.step("affect", "MMEI"):
        if config_file(model_dir, "affect_model") is not None:
            model = AffectModel.load(model_dir)
        else:
            model, _ = train_world_mmei((train, dev, test), cfg, ctx.config.seed)
            model.save(model_dir)
    table = model_dir / "subset_macro_f1.json"  # beside the model it compares: a second run reuses it
    if table.is_file():
        rows = json.loads(table.read_text(encoding="utf-8"))
    else:
        with ctx.step("affect", "baselines (unimodal, early and late fusion)"):
            rows = _subset_table(model, train, dev, test, cfg, ctx.config.seed)
        table.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    pred = model.predict(test)
    emo = classification_report(pred.emotion_probs, test.emotion, cfg.ece_bins)
    known = test.intent >= 0
    intent = classification_report(pred.intent_probs[known], test.intent[known], cfg.ece_bins)
    for k in ("macro_f1", "nll", "ece"):
        ctx.record("affect", f"emotion_{k}", emo[k], headline=True)
    ctx.record("affect", "intent_macro_f1", intent["macro_f1"], headline=True)
    ctx.record("affect", "emotion_weighted_f1", emo["weighted_f1"])
    ctx.record("affect", "temperature", model.temperature)
    ctx.record("affect", "subset_macro_f1", rows)

    ctx.report.section("Affect (MMEI)", f"Trained on {len(train)} world sessions, calibrated on "
                       f"{len(dev) if dev is not None else 0}, tested on {len(test)}. Temperatures "
                       f"{ {k: round(v, 3) for k, v in model.temperature.items()} }. Faces detected in "
                       f"{int(data.features['face'].present.sum())} of {len(data)} sessions (the rest count as "
                       f"missing), voices usable in {int(data.features['voice'].present.sum())}. "
                       f"{_face_encoder_text(cfg.encoders.face)}")
    ctx.report.table([{"head": "emotion", **emo}, {"head": "intent", **intent}], caption="MMEI on the test split")
    ctx.report.table(rows, caption="Emotion macro-F1 on the test split by modality subset (other modalities "
                                   "marked missing)")
    ctx.report.figure(_confusion_figure(test.emotion, pred.emotion_probs.argmax(1)),
                      caption="MMEI emotion confusion matrix (test, all modalities; counts, colour = row share)")

    sessions = load_world_sessions(world_dir)
    predictor = AffectPredictor(model)
    frame = predict_sessions(sessions, predictor, features=data)
    path = model_dir / "affect_context.parquet"  # beside the model: a stable input for the ranking cache
    write_affect_context(frame, predictor.context_schema, path)  # the schema in the file's metadata
    ctx.artifacts["mmei_dir"] = str(model_dir)
    ctx.artifacts["affect_context"] = str(path)
    log.info("affect context for %d sessions written to %s", len(frame), path)
