"""Summarise a first and a second demo run (``benchmarks/demo_first_run.sh``) into first_run.json / .md."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--first", type=Path, required=True, help="run folder of the first make demo")
    ap.add_argument("--second", type=Path, required=True, help="run folder of the second make demo")
    ap.add_argument("--first-wall", type=float, required=True, help="wall seconds of the first make demo")
    ap.add_argument("--second-wall", type=float, required=True, help="wall seconds of the second make demo")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    first = json.loads((a.first / "metrics.json").read_text(encoding="utf-8"))
    second = json.loads((a.second / "metrics.json").read_text(encoding="utf-8"))
    installs = first.get("install_s")
    result = {
        "first_make_demo_wall_s": a.first_wall, "installs_s": installs,
        "first_demo_after_installs_wall_s": round(a.first_wall - (installs or 0), 1),
        "first_stages_wall_s": first["timings_s"], "first_stages_cpu_s": first["cpu_s"],
        "first_steps_s": first.get("steps_s", {}),
        "second_make_demo_wall_s": a.second_wall, "second_stages_wall_s": second["timings_s"],
        "headline": {r: first[s][m] for r, (s, m) in {
            "emotion_macro_f1": ("affect", "emotion_macro_f1"), "umair_fps_auc": ("ranking", "umair_fps_auc"),
            "text_recall_at_1_after": ("content", "text_recall_at_1_after")}.items()},
        "cpu_count": os.cpu_count(), "load_average_1m_when_summarised": round(os.getloadavg()[0], 2),
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "first_run.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = ["# `make demo` on a fresh clone", "",
             f"First `make demo`: {a.first_wall:.0f} s wall, of which installs {installs} s; the demo after the "
             f"installs {result['first_demo_after_installs_wall_s']} s. Second `make demo`: {a.second_wall:.0f} s. "
             f"{result['cpu_count']} CPU cores, load average {result['load_average_1m_when_summarised']} when summarised.", "",
             "| stage / step | first run wall s | first run CPU s | second run wall s |", "|---|---:|---:|---:|"]
    for stage, wall in first["timings_s"].items():
        lines.append(f"| {stage} | {wall} | {first['cpu_s'][stage]} | {second['timings_s'].get(stage, '')} |")
        lines += [f"| · {k.split(': ', 1)[1]} | {v['wall_s']} | {v['cpu_s']} | |"
                  for k, v in first.get("steps_s", {}).items() if k.startswith(stage + ":")]
    lines += ["", "Headline figures of the first run: " + ", ".join(f"{k} {v:.4f}" for k, v in result["headline"].items())]
    (a.out / "first_run.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
