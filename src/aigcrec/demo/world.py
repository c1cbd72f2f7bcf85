"""Demo stage: generate (or reuse) the world, record its counts and oracle statistics, show its contact sheet."""

from __future__ import annotations

import json
import logging
from typing import Any

from aigcrec.data.world import load_world
from aigcrec.world.check import affect_oracle, click_oracle, contact_sheet
from aigcrec.world.generate import ensure_world

log = logging.getLogger("aigcrec.world")


def run(ctx: Any) -> None:
    wcfg = ctx.config.world
    seed = wcfg.seed if wcfg.seed is not None else ctx.config.seed
    with ctx.step("world", "generate"):
        path = ensure_world(ctx.cache_dir / f"world-{wcfg.size}-seed{seed}", wcfg.size, seed, wcfg)
    ctx.artifacts["world_dir"] = str(path)
    w = load_world(path)
    counts = w.manifest["counts"]
    for k, v in counts.items():
        ctx.record("world", k, v)

    stats_file = path / "check.json"
    stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.is_file() else {}
    if "clicks" not in stats or "affect" not in stats:
        with ctx.step("world", "click and affect oracles"):
            stats = {"clicks": click_oracle(w), "affect": affect_oracle(w)}
        stats_file.write_text(json.dumps(stats, indent=1), encoding="utf-8")
    c, a = stats["clicks"], stats["affect"]
    ctx.record("world", "oracle_click_auc_true_terms", c["auc_true_terms_lr"], headline=True)
    ctx.record("world", "oracle_click_auc_ceiling", c["auc_true_probability"])
    ctx.record("world", "oracle_click_auc_onehot_crosses", c["auc_onehot_crosses_lr"])
    ctx.record("world", "oracle_affect", a)
    ctx.record("world", "oracle_emotion_acc_all_modalities", a["emotion"]["text+face+voice"]["accuracy"],
               headline=True)

    r = ctx.report
    r.section("The embedded AIGC world",
              f"A simulated illustration platform ({w.manifest['size']} size, seed {seed}) with known ground truth: "
              "items are procedural illustrations (subject x painting style x mood palette x creator); users have "
              "latent tastes; sessions carry an emotion and an intent that shift what is bookmarked, and affect "
              "signals (utterance, cartoon face, voice clip). Generative model: docs/world.md.")
    r.table([{"what": k, "count": v} for k, v in counts.items()], caption="World contents")
    r.image(contact_sheet(w, thumb=80), caption="Contact sheet: one row per painting style, one column per subject.")
    rows = [{"model": "true click probability (ceiling)", "AUC": c["auc_true_probability"]},
            {"model": "LR on the true terms", "AUC": c["auc_true_terms_lr"]}]
    rows += [{"model": f"LR without the {k} term", "AUC": v} for k, v in c["auc_without_term"].items()]
    rows.append({"model": "LR on one-hot crosses learned from the logs", "AUC": c["auc_onehot_crosses_lr"]})
    r.table(rows, caption="Clicks are recoverable: AUC on the last 20% of impressions (by time).")
    r.table([{"modalities": k, **v} for k, v in a["emotion"].items()],
            caption=f"Affect oracle: emotion from hand-crafted features per modality subset (user-grouped CV; "
                    f"chance {a['chance_accuracy']}, majority {a['majority_accuracy']}).")
