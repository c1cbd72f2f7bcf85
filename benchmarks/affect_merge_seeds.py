"""Merge one-seed runs of ``aigcrec benchmark affect`` (each folder's affect.json) into one affect.json + affect.md.

Each run's ``<metric>_mean`` is that seed's value; the merge is ``aigcrec.affect.reports.summarize`` over them
(mean and population std, as a several-seed run writes), for ``models``, ``subsets`` and ``intent``. Used where
the seeds of one table were run as separate processes (benchmarks/results/affect-mmei-paper/README.md).

    python benchmarks/affect_merge_seeds.py --out DIR RUN_0 RUN_1 RUN_2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aigcrec.affect.benchmark import markdown
from aigcrec.affect.reports import summarize


def _values(summary: dict[str, float]) -> dict[str, float]:
    return {k[: -len("_mean")]: v for k, v in summary.items() if k.endswith("_mean")}


def merge(runs: list[dict]) -> dict:
    """One result over the runs' seeds (every run must hold the same models)."""
    first = runs[0]
    out = {"task": first["task"], "seeds": [s for r in runs for s in r["seeds"]],
           "models": {n: summarize([_values(r["models"][n]) for r in runs]) for n in first["models"]}}
    if "subsets" in first:
        out["subsets"] = {n: {s: summarize([_values(r["subsets"][n][s]) for r in runs]) for s in v}
                          for n, v in first["subsets"].items()}
    if "intent" in first:
        out["intent"] = {n: summarize([_values(r["intent"][n]) for r in runs]) for n in first["intent"]}
    for key in ("data_dir", "counts", "recipe", "config"):
        out[key] = first.get(key)
    out["wall_s"] = [r.get("wall_s") for r in runs]
    out["environment"] = [r.get("environment") for r in runs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="folders holding one run's affect.json each")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    result = merge([json.loads((d / "affect.json").read_text(encoding="utf-8")) for d in args.runs])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "affect.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.out / "affect.md").write_text(markdown(result), encoding="utf-8")
    print(args.out / "affect.json")


if __name__ == "__main__":
    main()
