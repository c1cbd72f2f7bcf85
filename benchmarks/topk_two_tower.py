#!/usr/bin/env python
"""The two-tower retrieval model alone under the top-K protocol (docs/topk.md), with and without its
history-id term (``TwoTowerConfig.history_ids``): the cheap iteration path of issue 20 (no ranker training).

Per seed: the two-tower is trained on the test task's training positives (as ``aigcrec build`` trains it on
a catalog's), every test user's vector is its training positives in time order (ids and content, as the
service's ``RecommendPipeline.source_lists`` builds it), and the whole catalog minus the user's training
items is ranked. Then the service's blended candidate list (``RecommendPipeline.candidates``: the
``aigcrec_retrieval`` row of ``aigcrec benchmark topk``) with the default two-tower, for the configured
blend and for the two-tower source alone, in its order (the ranker is not involved). Writes ``two_tower.json`` and ``two_tower.md`` into ``--out``.

    PYTHONPATH=src python benchmarks/topk_two_tower.py --data-dir ../shared/datasets/movielens-100k \
        --features runs/cache/topk/movielens-100k --seeds 1 --out benchmarks/results/topk-two-tower-movielens
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from aigcrec.cli.common import app_config
from aigcrec.cli.ranking import load_cli_dataset
from aigcrec.ranking.benchmark import machine_load
from aigcrec.retrieval.data import movielens_retrieval_data
from aigcrec.retrieval.trainer import train_two_tower
from aigcrec.service.config import SourceShares
from aigcrec.service.pipeline import RecommendPipeline
from aigcrec.topk.evaluate import DEEP, metrics, top_k
from aigcrec.topk.ours import events_of, retrieval_lists
from aigcrec.topk.protocol import make_tasks
from aigcrec.topk.runner import build_catalog


def evaluate(variant: dict, data, catalog, task, rdata_all, cfg, seed: int) -> dict:
    frame = data.frame
    tr = frame.iloc[task.train]
    tr = tr[tr["label"] == 1]
    keys = set(zip(tr["user_id"].astype(str), tr["item_id"].astype(str)))
    pos = rdata_all.positives
    keep = [(u, i) in keys for u, i in zip(pos["user_id"], pos["item_id"])]
    rdata = type(rdata_all)(**{**rdata_all.__dict__, "positives": pos[keep].reset_index(drop=True)})
    tt = cfg.retrieval.two_tower.model_copy(update=variant)
    t0 = time.perf_counter()
    model = train_two_tower(rdata, tt, seed)
    train_s = time.perf_counter() - t0
    ids = catalog.item_ids
    row = {i: r for r, i in enumerate(ids)}
    items = model.item_vectors(ids, catalog.vectors)  # (n, d)
    hist = {u: g.sort_values("timestamp", kind="stable")["item_id"].astype(str).tolist()
            for u, g in tr.groupby(tr["user_id"].astype(str))}
    t1 = time.perf_counter()
    lists = []
    for u in task.users:
        h = [i for i in hist.get(u, []) if i in row][-model.history_len:]
        rows = np.asarray([row[i] for i in h], np.int64)
        feats = {b: catalog.vectors[b][rows] for b in model.content.blocks} if len(rows) else None
        q = model.user_vector(u, feats, None, h)  # (1, d)
        s = (items @ q[0])[None, :]
        masked = [np.fromiter((row[i] for i in task.known.get(u, ()) if i in row), np.int64)]
        lists.append([ids[r] for r in top_k(s, masked, DEEP)[0] if r >= 0])
    ms = (time.perf_counter() - t1) * 1e3 / max(1, len(task.users))
    m = metrics(lists, [task.relevant[u] for u in task.users], len(ids), deep=True)
    return {**m, "train_s": train_s, "ms_per_user": ms}, model


class NoRanker:
    """Stands in for the ranker when only the candidate list is read (it keeps no history of its own)."""

    history_len = 0

    def score(self, *args, **kwargs):
        raise RuntimeError("NoRanker: candidates only")


def blended(model, data, catalog, task, cfg, blend, seed: int) -> dict:
    svc = cfg.service
    if blend is not None:
        svc = svc.model_copy(update={"retrieval": svc.retrieval.model_copy(update={"blend": blend})})
    pipe = RecommendPipeline.build(svc, catalog.metas, catalog.vectors, NoRanker(), seed=seed, retriever=model)
    pipe.observe(events_of(data.frame, task.train, task.seen_only))
    lists, ms = retrieval_lists(pipe, task.users)
    m = metrics(lists, [task.relevant[u] for u in task.users], len(catalog.item_ids), deep=True)
    return {**m, "ms_per_user": ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/movielens-100k"))
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=0, help="0: the configured epochs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/topk-two-tower-movielens"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = app_config(None, None, None)
    data = load_cli_dataset("movielens", args.data_dir, args.features, None, cfg)
    data.validate()
    catalog, data = build_catalog(data, "movielens", args.data_dir)
    tasks = make_tasks(data.frame, cfg.ranking.cold_item_fraction, cfg.ranking.split_seed)
    rdata = movielens_retrieval_data(args.data_dir, data.vectors)
    base = {} if not args.epochs else {"epochs": args.epochs}
    variants = {"two_tower_content_only": {**base, "history_ids": False},
                "two_tower_history_ids": {**base, "history_ids": True}}
    load0, t0 = machine_load(), time.perf_counter()
    out: dict = {"dataset": "movielens", "seeds": list(range(args.seeds)), "variants": variants, "models": {}}
    trained: dict = {}
    for name, var in variants.items():
        runs = []
        for s in range(args.seeds):
            r, trained[(name, s)] = evaluate(var, data, catalog, tasks["test"], rdata, cfg, s)
            runs.append(r)
        out["models"][name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]} | {"runs": runs}
        print(name, {k: round(v, 4) for k, v in out["models"][name].items() if k != "runs"}, flush=True)
    default = "two_tower_history_ids" if cfg.retrieval.two_tower.history_ids else "two_tower_content_only"
    blends = {"blend_configured": None, "blend_two_tower_only": {"none": SourceShares(two_tower=1.0)}}
    for name, blend in blends.items():
        runs = [blended(trained[(default, s)], data, catalog, tasks["test"], cfg, blend, s) for s in range(args.seeds)]
        out["models"][f"{name} ({default})"] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]} | {"runs": runs}
        print(name, {k: round(v, 4) for k, v in out["models"][f"{name} ({default})"].items() if k != "runs"}, flush=True)
    out["machine"] = {"before": load0, "after": machine_load(), "seconds": round(time.perf_counter() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "two_tower.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    keys = ["recall_at_10", "ndcg_at_10", "recall_at_20", "ndcg_at_20", f"recall_at_{DEEP}", "ms_per_user"]
    lines = [f"# Two-tower alone, top-K protocol (docs/topk.md): movielens, seeds {out['seeds']}", "",
             "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {n} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |" for n, m in out["models"].items()]
    lines += ["", "Two-tower training s: " + ", ".join(f"{n} {m['train_s']:.0f}" for n, m in out["models"].items()
                                                        if "train_s" in m)]
    lines += ["", f"Command: `benchmarks/topk_two_tower.py --seeds {args.seeds}"
              + (f" --epochs {args.epochs}" if args.epochs else "") + f"`; machine {out['machine']}"]
    (args.out / "two_tower.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
