#!/usr/bin/env python
"""Mean ± std over seeds of ``benchmarks/topk_served_quick.py`` results: reads ``served.json`` from each folder
named on the command line (one seed and task each), groups rows by (task, setting) and writes ``summary.md`` /
``summary.json`` into ``--out``.

    python benchmarks/topk_served_seeds.py --out benchmarks/results/topk-served-quick-movielens-fuse-seeds \
        benchmarks/results/topk-served-quick-movielens-cold benchmarks/results/topk-served-quick-movielens-fuse \
        benchmarks/results/topk-served-quick-movielens-fuse-seeds/{cold,test}-seed-{1,2}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

KEYS = {"cold": ("cold_recall_at_20", "cold_ndcg_at_20"), "test": ("ndcg_at_10", "recall_at_20", "coverage_at_10")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for run in args.runs:
        r = json.loads((run / "served.json").read_text(encoding="utf-8"))
        for name, row in r["rows"].items():
            groups.setdefault((r["task"], name), {})[int(r["seed"])] = row
    out, lines = {}, ["# Served pipeline over seeds (benchmarks/topk_served_quick.py runs)", ""]
    for task in ("cold", "test"):
        names = [n for t, n in groups if t == task]
        if not names:
            continue
        keys = KEYS[task]
        lines += [f"## {task} task", "", "| setting | seeds | " + " | ".join(keys) + " | per seed (" + keys[0] + ") |",
                  "|---" * (len(keys) + 3) + "|"]
        for name in names:
            seeds = groups[(task, name)]
            stats = {k: (float(np.mean([s[k] for s in seeds.values()])), float(np.std([s[k] for s in seeds.values()], ddof=1))
                         if len(seeds) > 1 else 0.0) for k in keys}
            out[f"{task}:{name}"] = {"seeds": sorted(seeds), **{f"{k}_mean": m for k, (m, _) in stats.items()},
                                     **{f"{k}_std": s for k, (_, s) in stats.items()}}
            per = ", ".join(f"{seeds[s][keys[0]]:.4f}" for s in sorted(seeds))
            lines.append(f"| {name} | {sorted(seeds)} | " + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in stats.values())
                         + f" | {per} |")
        lines.append("")
    lines.append("Inputs: " + ", ".join(f"`{p.as_posix()}`" for p in args.runs))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
