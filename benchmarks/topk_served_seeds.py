"""Mean ± std over seeds of ``benchmarks/topk_served_quick.py`` outputs (``served.json`` per seed folder).

Usage::

    python benchmarks/topk_served_seeds.py DIR_SEED0 DIR_SEED1 ... --out OUT --bar 0.1971 --peer "EASE 0.1877"

Writes ``OUT/summary.md`` and ``OUT/summary.json``: per served setting run on every seed, each seed's test NDCG@10 /
Recall@10 / Recall@20 and their mean and (population) std, and the setting's mean against ``--bar``. Folders of
``--task cold`` runs (cold-item Recall@20 / NDCG@20) get a table of their own; the bar is the test task's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = {"test": ("ndcg_at_10", "recall_at_10", "ndcg_at_20", "recall_at_20", "coverage_at_10"),
           "cold": ("cold_recall_at_20", "cold_ndcg_at_20")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--bar", type=float, help="the NDCG@10 a setting must reach (best peer + 5 %%)")
    ap.add_argument("--peer", default="", help="the best peer's name and NDCG@10, for the text")
    args = ap.parse_args()
    every = [json.loads((d / "served.json").read_text(encoding="utf-8")) for d in args.dirs]
    tasks = {r.get("task", "test") for r in every}
    runs = [r for r in every if r.get("task", "test") == "test"]
    out: dict = {"seeds": [r["seed"] for r in runs], "bar_ndcg_at_10": args.bar, "peer": args.peer, "settings": {}}
    dataset = every[0].get("dataset", "movielens")
    lines = [f"# Served pipeline over seeds, {'MovieLens' if dataset == 'movielens' else dataset} "
             + (f"test task (seeds {out['seeds']})" if runs else "cold-item task"), ""]
    for task in ("test", "cold"):
        if task not in tasks:
            continue
        runs = [r for r in every if r.get("task", "test") == task]
        metrics = METRICS[task]
        settings = [s for s in runs[0]["rows"] if all(s in r["rows"] for r in runs)]
        key = out["settings"] if task == "test" else out.setdefault("cold", {"seeds": [r["seed"] for r in runs],
                                                                             "settings": {}})["settings"]
        if task == "cold" and "test" in tasks:
            lines += ["", f"## Cold-item task (seeds {[r['seed'] for r in runs]})", ""]
        lines += ["| setting | " + " | ".join(metrics) + f" | {'NDCG@10' if task == 'test' else metrics[0]} per seed |",
                  "|---|" + "---|" * (len(metrics) + 1)]
        for s in settings:
            vals = {m: [float(r["rows"][s][m]) for r in runs] for m in metrics}
            key[s] = {m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "seeds": v} for m, v in vals.items()}
            if args.bar is not None and task == "test":
                key[s]["ndcg_at_10_bar_met"] = bool(np.mean(vals["ndcg_at_10"]) >= args.bar)
                key[s]["seeds_at_or_above_bar"] = int(sum(v >= args.bar for v in vals["ndcg_at_10"]))
            lines.append(f"| {s} | " + " | ".join(f"{np.mean(v):.4f} ± {np.std(v):.4f}" for v in vals.values())
                         + " | " + ", ".join(f"{v:.4f}" for v in vals[metrics[0]]) + " |")
    runs = [r for r in every if r.get("task", "test") == "test"]
    if args.bar is not None:
        lines += ["", f"Bar: NDCG@10 >= {args.bar} ({args.peer} + 5 %)." if args.peer else f"Bar: {args.bar}."]
        for s, r in out["settings"].items():
            lines.append(f"- {s}: mean {r['ndcg_at_10']['mean']:.4f}, "
                         f"{'met' if r['ndcg_at_10_bar_met'] else 'MISSED'}; "
                         f"{r['seeds_at_or_above_bar']}/{len(runs)} seeds at or above it")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
