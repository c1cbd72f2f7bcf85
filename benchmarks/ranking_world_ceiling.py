"""What limits ranking on a world: the click noise, the content vectors, or learning each user's taste.

Writes ``OUT/ceiling.json`` (default ``benchmarks/results/ranking-world-default``) with, on the warm split's
test rows (per-user temporal 80/10/10, as ``aigcrec benchmark ranking``):

- ``true_probability_auc``: AUC of the world's true bookmark probability (``impressions_truth.csv``), the
  ceiling any model can reach given the click noise;
- ``models``: AUC (overall and per user taste type) of ``umair_fps`` without its content profile and match
  terms (``use_history``, ``match`` off: the model this analysis was made for) and ``fm``, trained as the benchmark
  trains them, (a) on the usual fields, (b) with the items' true style, subject and palette added as
  categorical fields (ground truth the benchmark never gives), and (c) ``umair_fps`` with batch size 256
  (4x the optimiser steps) instead of 1024. If (b) is no better than (a), the content vectors are not what
  limits the models: learning each user's affinities from ~64 training impressions is.

Usage (content vectors cached by ``aigcrec benchmark ranking --dataset world``)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ranking_world_ceiling.py --world worlds/default-0 --seeds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from aigcrec.metrics import auc
from aigcrec.ranking.benchmark import machine_load, taste_aucs
from aigcrec.ranking.config import RankingConfig
from aigcrec.ranking.data import warm_split
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.ranking.features import Field
from aigcrec.sources import load_dataset
from aigcrec.world import load_world

TRUTH_FIELDS = ("style", "subject", "palette")


def with_truth_fields(data, world_dir: Path):
    """A copy of ``data`` whose items also carry their true style, subject and palette as categorical fields."""
    items = load_world(world_dir, check_files=False).items[["item_id", *TRUTH_FIELDS]].astype(str)
    items = items.rename(columns={c: f"true_{c}" for c in TRUTH_FIELDS})
    frame = data.frame.merge(items, on="item_id", how="left")
    fields = list(data.fields) + [Field(f"true_{c}", "categorical", "item") for c in TRUTH_FIELDS]
    return type(data)(data.name, frame, fields, dict(data.vectors), data.users)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ranking-world-default"))
    args = ap.parse_args()

    digest = hashlib.sha256(str(args.world.resolve()).encode()).hexdigest()[:10]
    data = load_dataset("world", args.world, Path("runs") / "cache" / f"ranking-content-world-{digest}")
    rows = warm_split(data.frame)
    truth = pd.read_csv(args.world / "impressions_truth.csv")
    if len(truth) != len(data.frame):
        raise SystemExit(f"{args.world}: impressions_truth.csv has {len(truth)} rows, interactions {len(data.frame)}")
    y_test = data.frame["label"].to_numpy()[rows["test"]]
    result = {"world": args.world.name, "warm_test_rows": int(len(rows["test"])),
              "true_probability_auc": auc(y_test, truth["p_click"].to_numpy()[rows["test"]]), "models": {}}
    # The model as it was before the content profile and the match terms (what ceiling.json measured): the
    # question here is whether per-user id embeddings learn the users' affinities; the profile was the answer.
    # Its settings then: stacked cross network and DNN, no modality dropout, the field crosses in z.
    base = RankingConfig()
    then = {"use_history": False, "match": False, "structure": "stacked", "modality_dropout": 0.0, "cross_fields": True}
    base = base.model_copy(update={"model": base.model.model_copy(update=then)})
    small_batch = base.train.model_copy(update={"batch_size": 256})
    runs = [("usual fields", data, "umair_fps", base.train), ("usual fields", data, "fm", base.train),
            ("+ true style/subject/palette", with_truth_fields(data, args.world), "umair_fps", base.train),
            ("+ true style/subject/palette", None, "fm", base.train),
            ("usual fields, batch 256", data, "umair_fps", small_batch)]
    prep = None
    for label, d, model, train_cfg in runs:
        if d is not None:  # None: the same data as the previous run, already prepared
            prep = prepare(d, rows)
        per_seed = []
        for seed in range(args.seeds):
            r = run_variant(prep, model, base.model, train_cfg, seed)
            per_seed.append({"auc": r.metrics["auc"], "best_epoch": r.metrics["best_epoch"],
                             **taste_aucs(prep, r.test_probs)})
        keys = sorted(per_seed[0])
        summary = {k: float(np.mean([p[k] for p in per_seed if k in p])) for k in keys}
        summary["auc_std"] = float(np.std([p["auc"] for p in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0
        result["models"][f"{model}, {label}"] = {**summary, "runs": per_seed}
        print(f"{model:10s} {label:30s} auc {summary['auc']:.4f} ± {summary['auc_std']:.4f}", flush=True)
    result["machine"] = machine_load()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ceiling.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"true probability AUC {result['true_probability_auc']:.4f}; wrote {args.out / 'ceiling.json'}")


if __name__ == "__main__":
    main()
