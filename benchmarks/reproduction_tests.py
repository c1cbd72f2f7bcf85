"""Paired tests over seeds on a ``ranking.json`` of benchmarks/reproduction.sh (warm test AUC).

- ``umair_fps`` vs the best baseline (the peer or tabular model with the highest mean AUC);
- ``umair_fps_paper`` and ``umair_fps_paper_val`` vs FuxiCTR DCNv2 (the tabular DCN-V2 on the same split).

Two-sided paired t-test (scipy ``ttest_rel``) over the seeds both models ran; writes ``paired.json`` and
``paired.md`` beside the input. Usage: ``python benchmarks/reproduction_tests.py <result folder>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

BASELINES = ("fuxictr_", "deepctr_", "dcnv2", "dcn", "deepfm", "xdeepfm", "fm", "lr")


def paired(models: dict, a: str, b: str) -> dict:
    ra = {r["seed"]: r["auc"] for r in models[a]["runs"]["warm"]}
    rb = {r["seed"]: r["auc"] for r in models[b]["runs"]["warm"]}
    seeds = sorted(set(ra) & set(rb))
    d = np.array([ra[s] - rb[s] for s in seeds])
    p = float(ttest_rel([ra[s] for s in seeds], [rb[s] for s in seeds]).pvalue) if len(d) > 1 and d.std() > 0 \
        else float("nan")
    return {"a": a, "b": b, "seeds": seeds, "auc_a": float(np.mean([ra[s] for s in seeds])),
            "auc_b": float(np.mean([rb[s] for s in seeds])), "diff_mean": float(d.mean()),
            "diff_min": float(d.min()), "p_two_sided": p}


def main(folder: str) -> None:
    out = Path(folder)
    models = json.loads((out / "ranking.json").read_text(encoding="utf-8"))["models"]
    base = [n for n in models if n.startswith(BASELINES[:2]) or n in BASELINES[2:]]
    best = max(base, key=lambda n: models[n]["auc_mean"])
    tests = [paired(models, "umair_fps", best)]
    tests += [paired(models, p, "fuxictr_dcnv2") for p in ("umair_fps_paper", "umair_fps_paper_val") if p in models]
    (out / "paired.json").write_text(json.dumps({"best_baseline": best, "tests": tests}, indent=1), encoding="utf-8")
    lines = ["# Paired tests (warm test AUC, two-sided paired t-test over seeds)", "",
             f"Best baseline by mean AUC: {best}.", "",
             "| a | b | seeds | AUC a | AUC b | a − b (mean) | a − b (min) | p |", "|---|---|---|---|---|---|---|---|"]
    for t in tests:
        lines.append(f"| {t['a']} | {t['b']} | {len(t['seeds'])} | {t['auc_a']:.4f} | {t['auc_b']:.4f} | "
                     f"{t['diff_mean']:+.4f} | {t['diff_min']:+.4f} | {t['p_two_sided']:.3g} |")
    (out / "paired.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
