#!/usr/bin/env python
"""Why cold items are lost in the served fusion, and what ranks them (issue 20): the retrieval models alone
under the top-K protocol (docs/topk.md) on the cold-item task and the test task, no ranker.

Per task (seed ``--seed``), the two-tower and the item-item model are fit on the task's training positives
(``aigcrec.topk.ours.TrainedRetriever``, as ``aigcrec build`` fits them), the two-tower twice: its uniform
negatives drawn from every catalog row, from the liked items only and from the shown ones (any training row)
(``TwoTowerConfig.negatives_from``, ``--negatives``); each
judged user's query is their training positives in time order. Rows, each ranking the whole catalog minus the
user's known items:

- ``two_tower``: the two-tower's score, item id embedding included where the model has one;
- ``two_tower_content``: the same user vector against every item's content-only vector (id term 0);
- ``two_tower_own_rank``: an item with an id embedding at its percentile among the full scores, an item
  without one (never a training positive: the cold items) at its percentile among the content-only scores,
  so it competes on the footing the model would give it without ids;
- ``item_item``: the EASE^R scores (items without a training positive score 0);
- ``fusion (w_tt, w_cf) <mode>``: ``w_tt q_tt + w_cf q_cf`` of the percentiles (1 = best), the two-tower's from
  ``two_tower`` or ``two_tower_own_rank``; ``renormalize`` leaves the item-item term out of the blend of an
  item it has no column for and divides by the weights left (``ServiceConfig.fuse_unknown``).

Writes ``cold_fusion.json`` / ``cold_fusion.md``.

    PYTHONPATH=src python benchmarks/topk_cold_fusion.py --features runs/cache/topk/movielens-100k \
        --out benchmarks/results/topk-cold-fusion-movielens
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
from aigcrec.topk import ours
from aigcrec.topk.evaluate import metrics, top_k
from aigcrec.topk.protocol import make_tasks
from aigcrec.topk.runner import build_catalog

FUSIONS = [(0.2, 0.8), (0.5, 0.5)]
NEGATIVES = ("catalog", "liked", "shown")  # TwoTowerConfig.negatives_from values


def percentile(s: np.ndarray) -> np.ndarray:
    """(n,) scores -> (n,) in [0, 1): the share of items scored below each (1 - rank / n, ties by order)."""
    order = np.argsort(-s, kind="stable")
    q = np.empty(len(s))
    q[order] = 1.0 - np.arange(len(s)) / len(s)
    return q


def rankings(task, catalog, retriever, frame) -> dict[str, list[list[str]]]:
    ids = catalog.item_ids
    row = {i: r for r, i in enumerate(ids)}
    tt, cf = retriever.model, retriever.collab
    full = tt.item_vectors(ids, catalog.vectors)  # (n, d)
    content = tt.item_vectors(["\0unknown"] * len(ids), catalog.vectors)  # (n, d) every id term 0
    has_id = np.array([i in tt.item_code for i in ids])  # (n,)
    cf_rows = np.array([row[i] for i in cf.item_ids], np.int64)
    cf_known = np.zeros(len(ids), bool)
    cf_known[cf_rows] = cf.known
    tr = frame.iloc[task.train]
    tr = tr[tr["label"] == 1]
    hist = {u: g.sort_values("timestamp", kind="stable")["item_id"].astype(str).tolist()
            for u, g in tr.groupby(tr["user_id"].astype(str))}
    out: dict[str, list[list[str]]] = {}

    def add(name: str, s: np.ndarray, masked: np.ndarray) -> None:
        out.setdefault(name, []).append([ids[r] for r in top_k(s[None, :], [masked], 20)[0] if r >= 0])

    for u in task.users:
        h = [i for i in hist.get(u, []) if i in row]
        ht = h[-tt.history_len:]
        rows = np.asarray([row[i] for i in ht], np.int64)
        feats = {b: catalog.vectors[b][rows] for b in tt.content.blocks} if len(rows) else None
        q = tt.user_vector(u, feats, None, ht)[0]  # (d,)
        masked = np.fromiter((row[i] for i in task.known.get(u, ()) if i in row), np.int64)
        s_full, s_content = full @ q, content @ q  # (n,)
        q_full = percentile(s_full)
        q_own = np.where(has_id, q_full, percentile(s_content))
        s_cf = np.zeros(len(ids))
        s_cf[cf_rows] = cf.scores(h)
        q_cf = percentile(s_cf)
        add("two_tower", s_full, masked)
        add("two_tower_content", s_content, masked)
        add("two_tower_own_rank", q_own, masked)
        add("item_item", s_cf, masked)
        for w_tt, w_cf in FUSIONS:
            for tname, q_tt in (("two_tower", q_full), ("two_tower_own_rank", q_own)):
                worst = w_tt * q_tt + w_cf * q_cf * cf_known
                add(f"fusion ({w_tt:g}, {w_cf:g}) {tname} worst", worst, masked)
                renorm = np.where(cf_known, worst, q_tt)  # (w_tt q_tt) / w_tt: the item-item term left out
                add(f"fusion ({w_tt:g}, {w_cf:g}) {tname} renormalize", renorm, masked)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="movielens")
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/movielens-100k"))
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--negatives", default=",".join(NEGATIVES), help="TwoTowerConfig.negatives_from values to "
                    "train, comma-separated, each in this run")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/topk-cold-fusion-movielens"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = app_config(args.config, None, None)
    data = load_cli_dataset(args.dataset, args.data_dir, args.features, None, cfg)
    data.validate()
    catalog, data = build_catalog(data, args.dataset, args.data_dir)
    tasks = make_tasks(data.frame, cfg.ranking.cold_item_fraction, cfg.ranking.split_seed)
    load0, t0 = machine_load(), time.perf_counter()
    result: dict = {"dataset": args.dataset, "seed": args.seed, "tasks": {}}
    for tname in ("cold", "test"):
        task = tasks[tname]
        rows, train_s = {}, {}
        negatives = [n for n in args.negatives.split(",") if n]
        for neg in negatives:
            rcfg = cfg.retrieval.model_copy(update={"two_tower": cfg.retrieval.two_tower.model_copy(
                update={"negatives_from": neg})})
            retriever = ours.TrainedRetriever(data, args.dataset, args.data_dir, task, rcfg, args.seed,
                                              catalog.item_ids)
            train_s[neg] = retriever.train_s
            rel = [task.relevant[u] for u in task.users]
            for name, ls in rankings(task, catalog, retriever, data.frame).items():
                if neg != negatives[0] and name == "item_item":
                    continue  # the same model
                name = name if name == "item_item" else f"{name} [negatives {neg}]"
                m = metrics(ls, rel, len(catalog.item_ids), cold=tname == "cold")
                rows[name] = m
                print(tname, name, {k: round(v, 4) for k, v in m.items()}, flush=True)
        result["tasks"][tname] = {"users": len(task.users), "retrieval_train_s": train_s, "rows": rows}
    result["machine"] = {"before": load0, "after": machine_load(), "seconds": round(time.perf_counter() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cold_fusion.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    cold, test = result["tasks"]["cold"]["rows"], result["tasks"]["test"]["rows"]
    lines = [f"# Retrieval models alone on the cold-item and test tasks, {args.dataset}, seed {args.seed}", "",
             "| ranking | cold Recall@20 | cold NDCG@20 | test Recall@20 | test NDCG@10 |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {cold[n]['cold_recall_at_20']:.4f} | {cold[n]['cold_ndcg_at_20']:.4f} | "
              f"{test[n]['recall_at_20']:.4f} | {test[n]['ndcg_at_10']:.4f} |" for n in cold]
    lines += ["", f"Command: `benchmarks/topk_cold_fusion.py --dataset {args.dataset} --seed {args.seed} "
              f"--negatives {args.negatives}`"
              f"{' --config ' + str(args.config) if args.config else ''}; machine {result['machine']}"]
    (args.out / "cold_fusion.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
