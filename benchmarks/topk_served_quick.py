#!/usr/bin/env python
"""The served row of ``aigcrec benchmark topk`` on one seed's test task, cheaply: one ranker (optionally
with fewer epochs than configured), the two-tower, and the served list (``RecommendPipeline.recommend``,
the code ``/v1/recommend`` runs, through ``aigcrec.topk.ours``) for several ``ServiceConfig.retrieval_weight``
values, all from the same trained models. No validation grid, no ranker-over-all row; ``--task cold``
serves the cold-item task instead (models fit without the held-out items' rows, Recall@20 / NDCG@20 on
their positives): an iteration tool (issue 20); the full table is ``benchmarks/topk.sh``. Writes
``served.json`` / ``served.md``.

    PYTHONPATH=src python benchmarks/topk_served_quick.py --features runs/cache/topk/movielens-100k \
        --ranker-epochs 2 --out benchmarks/results/topk-served-quick-movielens
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from aigcrec.cli.common import app_config
from aigcrec.cli.ranking import load_cli_dataset
from aigcrec.ranking.benchmark import machine_load
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.topk import ours
from aigcrec.topk.evaluate import metrics
from aigcrec.topk.protocol import make_tasks
from aigcrec.topk.runner import VARIANT, build_catalog


def _value(text: str) -> float | str:
    """A grid value: a number, else the word as written (e.g. ``fuse_unknown=worst``)."""
    try:
        return float(text)
    except ValueError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="movielens", help="a layout benchmark topk reads: movielens, world, catalog")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/movielens-100k"))
    ap.add_argument("--config", type=Path, default=None, help="an aigcrec config (e.g. benchmarks/ranking_world.yaml)")
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ranker-epochs", type=int, default=0, help="0: the configured max_epochs")
    ap.add_argument("--weights", default="0,0.5,0.8,0.9,1.0", help="retrieval_weight values (without --grid)")
    ap.add_argument("--grid", default="", help="serving settings separated by ';', each 'key=value,...' "
                    "(ours.serving_config keys: retrieval_weight, collab_weight, fuse_unknown, candidates, diversity, "
                    "collab_share); replaces --weights")
    ap.add_argument("--two-tower-cache", type=Path, default=None, help="a two-tower saved for this seed's "
                    "training rows (benchmarks/topk_collab_blend.py writes one): loaded instead of trained, saved "
                    "there when absent")
    ap.add_argument("--task", choices=("test", "cold"), default="test", help="the test task, or the "
                    "cold-item task (models fit on its training rows; cold Recall@20 / NDCG@20)")
    ap.add_argument("--val", action="store_true", help="also the validation task (same models, as the "
                    "benchmark's grid); the setting chosen on it is marked")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/topk-served-quick-movielens"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = app_config(args.config, None, None)
    if args.ranker_epochs:
        rk = cfg.ranking.model_copy(update={"train": cfg.ranking.train.model_copy(
            update={"max_epochs": args.ranker_epochs})})
        cfg = cfg.model_copy(update={"ranking": rk})
    data = load_cli_dataset(args.dataset, args.data_dir, args.features, None, cfg)
    data.validate()
    catalog, data = build_catalog(data, args.dataset, args.data_dir)
    tasks = make_tasks(data.frame, cfg.ranking.cold_item_fraction, cfg.ranking.split_seed)
    task = tasks[args.task]
    if args.task == "cold" and args.val:
        ap.error("--val judges the test task's validation period; with --task cold leave it out")
    load0, t0 = machine_load(), time.perf_counter()
    ranker = ours.TrainedRanker(data, task, VARIANT, cfg.ranking, cfg.service, args.seed)
    print("ranker", round(ranker.train_s), {k: round(v, 4) for k, v in ranker.ctr.items()}, flush=True)
    cached = args.two_tower_cache is not None and (args.two_tower_cache / "two_tower.json").is_file()
    rcfg = cfg.retrieval.model_copy(update={"enabled": False}) if cached else cfg.retrieval
    retriever = ours.TrainedRetriever(data, args.dataset, args.data_dir, task, rcfg, args.seed, catalog.item_ids)
    if cached:
        retriever.model = TwoTowerRetriever.load(args.two_tower_cache)
    elif args.two_tower_cache is not None and retriever.model is not None:
        retriever.model.save(args.two_tower_cache)
    out = {"dataset": args.dataset, "seed": args.seed, "task": args.task,
           "ranker_max_epochs": cfg.ranking.train.max_epochs, "ranker_train_s": ranker.train_s,
           "ranker_ctr": ranker.ctr, "two_tower_train_s": retriever.train_s, "two_tower_loaded": cached,
           "two_tower": cfg.retrieval.two_tower.model_dump(), "rows": {}}
    if args.grid:
        settings = [{k: _value(v) for k, v in (kv.split("=") for kv in g.split(",") if kv)} for g in args.grid.split(";")]
    else:
        settings = [{"retrieval_weight": float(x)} for x in args.weights.split(",")]
    for params in settings:
        params = {k: int(v) if k == "candidates" else v for k, v in params.items()}
        svc = ours.serving_config(cfg.service, params)
        name = "aigcrec_served " + (",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in params.items()) or "defaults")
        row = {}
        for tname in (("val", "test") if args.val else (args.task,)):
            t = tasks[tname]
            pipe, _ = ours.build_pipeline(catalog, ranker, svc, data.frame, t, args.seed, retriever)
            lists, ms = ours.served_lists(pipe, t.users)
            m = metrics(lists, [t.relevant[u] for u in t.users], len(catalog.item_ids), cold=tname == "cold")
            row.update({(k if tname != "val" else f"val_{k}"): v for k, v in m.items()})
            if tname != "val":
                row["ms_per_user"] = ms
        out["rows"][name] = row
        print(name, {k: round(v, 4) for k, v in row.items()}, flush=True)
    if args.val:
        out["chosen_on_val"] = max(out["rows"], key=lambda n: out["rows"][n]["val_ndcg_at_10"])
    out["machine"] = {"before": load0, "after": machine_load(), "seconds": round(time.perf_counter() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "served.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    keys = (["val_ndcg_at_10"] if args.val else []) + (
        ["cold_recall_at_20", "cold_ndcg_at_20", "ms_per_user"] if args.task == "cold" else
        ["recall_at_10", "ndcg_at_10", "recall_at_20", "ndcg_at_20", "mrr_at_20", "coverage_at_10", "ms_per_user"])
    lines = [f"# Served pipeline, {args.dataset} {args.task} task, seed {args.seed} (ranker max_epochs "
             f"{out['ranker_max_epochs']}, trained {ranker.train_s:.0f} s; two-tower {retriever.train_s:.0f} s)", "",
             "| row | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |" for n, m in out["rows"].items()]
    if args.val:
        lines += ["", f"Chosen on validation NDCG@10: `{out['chosen_on_val']}`"]
    lines += ["", f"Ranker CTR on the task's test impressions: {json.dumps({k: round(v, 4) for k, v in ranker.ctr.items()})}",
              "", f"Command: `benchmarks/topk_served_quick.py --seed {args.seed} --task {args.task}"
              + (f" --ranker-epochs {args.ranker_epochs}" if args.ranker_epochs else "")
              + (f" --grid '{args.grid}'" if args.grid else f" --weights {args.weights}") + (" --val" if args.val else "")
              + "`; "
              f"machine {out['machine']}"]
    (args.out / "served.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
