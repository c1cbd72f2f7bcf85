#!/usr/bin/env python
"""Exploration for issue 20: an EASE^R item-item source beside the two-tower, fused by rank or by
normalised score, on one seed's validation and test tasks of ``aigcrec benchmark topk`` (MovieLens).

Every setting is scored over the whole catalog (the protocol's masks), the fusion weight and EASE's lambda
are chosen on the VALIDATION task by NDCG@10, and the chosen setting is then reported on the test task.
No ranker (the ranker re-ranks the served candidates; its contribution at retrieval_weight 0.9 was +0.002,
docs/topk.md). An iteration tool; the served row is ``aigcrec benchmark topk``. Writes ``blend.json`` /
``blend.md``.

    PYTHONPATH=src python benchmarks/topk_collab_blend.py --features runs/cache/topk/movielens-100k \
        --out benchmarks/results/topk-collab-blend-movielens
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from aigcrec.cli.common import app_config
from aigcrec.cli.ranking import load_cli_dataset
from aigcrec.ranking.benchmark import machine_load
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.topk import ours
from aigcrec.topk.evaluate import metrics, top_k
from aigcrec.topk.protocol import make_tasks
from aigcrec.topk.runner import Matrices, build_catalog

DEPTH = 500  # rank-based fusion: positions beyond it count as R (score 0), as fuse_retrieval does


def ease_b(x: np.ndarray, lam: float) -> np.ndarray:
    g = x.T @ x
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def rank_score(s: np.ndarray, masked: list[np.ndarray], depth: int = DEPTH) -> np.ndarray:
    """``1 - r / R`` of each item in the user's list (unmasked items ranked by ``s``), 0 beyond ``R``."""
    best = top_k(s, masked, depth)  # (u, R)
    q = np.zeros_like(s)
    rows = np.repeat(np.arange(len(s)), best.shape[1]).reshape(best.shape)
    val = 1.0 - np.arange(best.shape[1])[None, :] / best.shape[1]
    ok = best >= 0
    q[rows[ok], best[ok]] = np.broadcast_to(val, best.shape)[ok]
    return q


def z_score(s: np.ndarray, masked: list[np.ndarray]) -> np.ndarray:
    m = np.ones_like(s, dtype=bool)
    for r, cols in enumerate(masked):
        m[r, cols] = False
    mu = np.array([s[r, m[r]].mean() for r in range(len(s))])[:, None]
    sd = np.array([s[r, m[r]].std() for r in range(len(s))])[:, None]
    return (s - mu) / np.maximum(sd, 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/movielens-100k"))
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--two-tower-cache", type=Path, default=Path("runs/cache/topk-collab/two-tower-seed0"),
                    help="the trained two-tower is saved here and reused by a later call (git-ignored)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/topk-collab-blend-movielens"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t_start, load0 = time.perf_counter(), machine_load()
    cfg = app_config(None, None, None)
    data = load_cli_dataset("movielens", args.data_dir, args.features, None, cfg)
    data.validate()
    catalog, data = build_catalog(data, "movielens", args.data_dir)
    tasks = make_tasks(data.frame, cfg.ranking.cold_item_fraction, cfg.ranking.split_seed)
    mats = Matrices(data.frame, catalog)
    x = np.asarray(mats.train_data(tasks["test"]).x.todense(), np.float64)  # (users, items) val/test share it
    n_items = x.shape[1]

    # The users' training positives in time order (what the pipeline's observe keeps as history).
    fr = data.frame.iloc[tasks["test"].train]
    fr = fr[fr["label"] == 1].sort_values("timestamp", kind="stable")
    hist = {u: [mats.item_pos[i] for i in g["item_id"].astype(str)] for u, g in fr.groupby(fr["user_id"].astype(str))}

    # Two-tower scores over the catalog with the pipeline's query (last history_len positives).
    if (args.two_tower_cache / "two_tower.json").is_file():
        tt = TwoTowerRetriever.load(args.two_tower_cache)
        tt_s = None
    else:
        r = ours.TrainedRetriever(data, "movielens", args.data_dir, tasks["test"], cfg.retrieval, args.seed)
        tt, tt_s = r.model, r.train_s
        tt.save(args.two_tower_cache)
    item_v = np.asarray(tt.item_vectors(catalog.item_ids, catalog.vectors), np.float64)  # (n, d)
    users_all = mats.users
    L = tt.history_len
    tt_scores = np.zeros((len(users_all), n_items))
    for ui, u in enumerate(users_all):
        h = hist.get(u, [])[-L:]
        feats = {m: catalog.vectors[m][h] for m in catalog.vectors} if h else None
        uv = tt.user_vector(u, feats, None, [catalog.item_ids[r] for r in h])
        tt_scores[ui] = np.asarray(uv, np.float64).reshape(-1) @ item_v.T
    print("two-tower scores ready", round(time.perf_counter() - t_start), flush=True)

    def queries(kind: str) -> np.ndarray:
        q = np.zeros_like(x)
        for ui, u in enumerate(users_all):
            h = hist.get(u, [])
            if kind == "all":
                q[ui, h] = 1.0
            elif kind == "last50":
                q[ui, h[-50:]] = 1.0
            elif kind.startswith("decay"):  # weight 0.5 ** (age / half_life), age 0 = the newest
                half = float(kind[5:])
                w = 0.5 ** (np.arange(len(h))[::-1] / half)
                np.maximum.at(q[ui], h, w)
        return q

    lams = [100.0, 250.0, 500.0, 1000.0]
    bs = {lam: ease_b(x, lam) for lam in lams}
    qs = {k: queries(k) for k in ("all", "last50", "decay20", "decay50")}
    out = {"seed": args.seed, "two_tower_train_s": tt_s, "tasks": {}}
    for tname in ("val", "test"):
        task = tasks[tname]
        uix = np.array([mats.user_pos[u] for u in task.users])
        masked = [np.fromiter((mats.item_pos[i] for i in task.known.get(u, ())), np.int64) for u in task.users]
        rel = [task.relevant[u] for u in task.users]

        def judge(s: np.ndarray) -> dict[str, float]:
            best = top_k(s, masked, 20)
            return metrics([[catalog.item_ids[r] for r in row if r >= 0] for row in best], rel, n_items)

        rows: dict[str, dict[str, float]] = {}
        tt_u = tt_scores[uix]
        rows["two_tower"] = judge(tt_u)
        tt_rank, tt_z = rank_score(tt_u, masked), z_score(tt_u, masked)
        for lam in lams:
            for qk, q in qs.items():
                e = q[uix] @ bs[lam]
                rows[f"ease lambda={lam:g} query={qk}"] = judge(e)
                if qk not in ("all", "decay20"):
                    continue
                e_rank, e_z = rank_score(e, masked), z_score(e, masked)
                for a in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
                    rows[f"rank-fusion lambda={lam:g} query={qk} tt={a:g}"] = judge((1 - a) * e_rank + a * tt_rank)
                    rows[f"z-fusion lambda={lam:g} query={qk} tt={a:g}"] = judge((1 - a) * e_z + a * tt_z)
        out["tasks"][tname] = rows
        top = sorted(rows.items(), key=lambda kv: -kv[1]["ndcg_at_10"])[:8]
        print(tname, [(n, round(m["ndcg_at_10"], 4)) for n, m in top], flush=True)
    val, test = out["tasks"]["val"], out["tasks"]["test"]
    chosen = max(val, key=lambda n: val[n]["ndcg_at_10"])
    out["chosen_on_val"] = {"setting": chosen, "val_ndcg_at_10": val[chosen]["ndcg_at_10"],
                            "test": test[chosen]}
    out["machine"] = {"before": load0, "after": machine_load(), "seconds": round(time.perf_counter() - t_start, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "blend.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    keys = ["recall_at_10", "ndcg_at_10", "recall_at_20", "ndcg_at_20", "coverage_at_10"]
    lines = [f"# EASE^R + two-tower fusion, MovieLens seed {args.seed} (no ranker; full-catalog ranking)", "",
             f"Chosen on validation NDCG@10: `{chosen}` (validation {val[chosen]['ndcg_at_10']:.4f}); "
             f"test NDCG@10 {test[chosen]['ndcg_at_10']:.4f}.", "",
             "| setting | val NDCG@10 | " + " | ".join(f"test {k}" for k in keys) + " |",
             "|---" * (len(keys) + 2) + "|"]
    for n in sorted(val, key=lambda n: -val[n]["ndcg_at_10"]):
        lines.append(f"| {n} | {val[n]['ndcg_at_10']:.4f} | " + " | ".join(f"{test[n][k]:.4f}" for k in keys) + " |")
    lines += ["", f"Command: `PYTHONPATH=src python benchmarks/topk_collab_blend.py --features FEATURES --seed {args.seed}`; "
              f"machine {out['machine']}"]
    (args.out / "blend.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
