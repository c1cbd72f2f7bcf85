"""Issue 21 recheck: UMAIR-FPS with and without ``model.fm_cross`` on MovieLens-100K warm, paired by seed.

Reads ``defaults/ranking.json`` and ``fm_cross/ranking.json`` beside this script (both written by
``aigcrec benchmark ranking`` on the same code, see README.md) and writes ``paired.md``: per-seed test AUC,
validation AUC, logloss, gAUC and best epoch of both, the per-seed difference (fm_cross - defaults), its
mean ± std (ddof=1), the number of seeds ahead and a two-sided paired t-test (scipy.stats.ttest_rel).

For reference it also reads the two earlier files that the old claim compared
(``../ranking-movielens/ranking.json``, the defaults on older code, and ``../ranking-movielens-fm-cross/ranking.json``)
and prints them beside the recheck's runs of the same seeds; nothing here is typed in by hand.

    python benchmarks/results/ranking-movielens-fm-cross-recheck/paired.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
METRICS = ("auc", "val_auc", "logloss", "gauc")
# earlier files, read for reference only (label, path relative to this folder's parent)
EARLIER = [("defaults, the old claim's file (older code)", "ranking-movielens/ranking.json"),
           ("fm_cross, the old claim's file (code of 76cd035)", "ranking-movielens-fm-cross/ranking.json"),
           ("defaults, ranking-throughput (current model code)", "ranking-throughput/ranking.json")]


def warm_runs(path: Path, model: str = "umair_fps") -> dict[int, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {int(r["seed"]): r for r in data["models"][model]["runs"]["warm"]}


def summary(values) -> str:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")
    return f"{arr.mean():.4f} ± {std:.4f}"


def paired(a: dict[int, dict], b: dict[int, dict], seeds: list[int], metric: str) -> dict:
    x = np.array([a[s][metric] for s in seeds], dtype=np.float64)
    y = np.array([b[s][metric] for s in seeds], dtype=np.float64)
    d = y - x
    p = float(stats.ttest_rel(y, x).pvalue) if len(seeds) > 1 else float("nan")
    return {"diff": d, "mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
            "ahead": int((d > 0).sum()), "p": p}


def pair_tables(base: dict[int, dict], fm: dict[int, dict], seeds: list[int]) -> list[str]:
    """Per-seed table and the paired summary of fm_cross vs defaults over ``seeds``."""
    lines = ["| seed | test AUC defaults | test AUC fm_cross | diff | val AUC defaults | val AUC fm_cross | diff "
             "| best epoch defaults / fm_cross |", "|---|---|---|---|---|---|---|---|"]
    for s in seeds:
        a, b = base[s], fm[s]
        lines.append(f"| {s} | {a['auc']:.4f} | {b['auc']:.4f} | {b['auc'] - a['auc']:+.4f} "
                     f"| {a['val_auc']:.4f} | {b['val_auc']:.4f} | {b['val_auc'] - a['val_auc']:+.4f} "
                     f"| {a['best_epoch']:.0f} / {b['best_epoch']:.0f} |")
    lines += ["", "| metric | defaults | fm_cross | diff mean ± std | fm_cross higher | paired t-test p |",
              "|---|---|---|---|---|---|"]
    for m in METRICS:
        r = paired(base, fm, seeds, m)
        lines.append(f"| {m} | {summary([base[s][m] for s in seeds])} | {summary([fm[s][m] for s in seeds])} "
                     f"| {r['mean']:+.4f} ± {r['std']:.4f} | {r['ahead']} / {len(seeds)} | {r['p']:.3f} |")
    loads = [r["load_1m"] for runs in (base, fm) for s, r in runs.items() if s in seeds and "load_1m" in r]
    if loads:
        lines += ["", f"1-minute load average at the end of each run: {min(loads):.1f}-{max(loads):.1f} "
                      "(2 CPUs, shared with another job)."]
    return lines


def load_pair(folder: Path) -> tuple[dict, dict, list[int]] | None:
    files = folder / "defaults" / "ranking.json", folder / "fm_cross" / "ranking.json"
    if not all(f.is_file() for f in files):
        return None
    base, fm = (warm_runs(f) for f in files)
    return base, fm, sorted(set(base) & set(fm))


def main() -> int:
    pair = load_pair(HERE)
    if pair is None or not pair[2]:
        print("defaults/ranking.json and fm_cross/ranking.json with a common seed are needed", file=sys.stderr)
        return 1
    base, fm, seeds = pair
    lines = ["# UMAIR-FPS, MovieLens-100K warm: fm_cross vs defaults, paired by seed", "",
             f"Seeds {', '.join(map(str, seeds))}, both configurations on the current code, interleaved seed by seed "
             "(README.md). Difference = fm_cross - defaults; std with ddof=1; p: two-sided paired t-test "
             "(scipy.stats.ttest_rel); 'fm_cross higher' counts seeds (for logloss higher is worse).", ""]
    lines += pair_tables(base, fm, seeds)
    old = load_pair(HERE / "old-code")
    if old is not None and old[2]:
        lines += ["", "## The same comparison on the code of the old claim's commit (76cd035)", "",
                  "Both configurations re-run on that commit's src/ (README.md): the old claim's fm_cross runs beside "
                  "defaults trained by the same code.", ""]
        lines += pair_tables(*old)
    present = [(label, warm_runs(HERE.parent / rel)) for label, rel in EARLIER if (HERE.parent / rel).is_file()]
    if present:
        lines += ["", "## Earlier files (read from disk, not re-run here)", "",
                  "Test AUC per seed of the earlier runs, beside this recheck's run of the same seed:", "",
                  "| run | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
        rows = [("this recheck, defaults", base), ("this recheck, fm_cross", fm)]
        if old is not None:
            rows += [("76cd035 re-run, defaults", old[0]), ("76cd035 re-run, fm_cross", old[1])]
        for label, runs in rows + present:
            cells = (f"{runs[s]['auc']:.4f}" if s in runs else "-" for s in seeds)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
        for label, runs in present:
            for mine_label, mine in rows:
                common = [s for s in seeds if s in runs and s in mine]
                if common and max(abs(runs[s]["auc"] - mine[s]["auc"]) for s in common) < 5e-5:
                    lines.append(f"- {label}: the same test AUC as {mine_label} on seed(s) "
                                 f"{', '.join(map(str, common))} (|diff| < 5e-5): a run is reproducible for its "
                                 "seed and code.")
    out = HERE / "paired.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
