"""CTR@10 ratios across the two runs of ``benchmarks/simulate_default.sh`` (same seeds, sessions and draws).

    python benchmarks/simulate_ratios.py benchmarks/results/simulate-default \
        benchmarks/results/simulate-default-extra

Writes ``ratios.json`` and ``ratios.md`` into the first folder: per-seed ratios (mean and 95 % t-interval) of
affect_mmei, affect_oracle (stated only), affect_oracle with the signals, ceiling and ceiling_blind over
affect_blind, ceiling over ceiling_blind, and the share of each oracle's CTR lift that affect_mmei reaches.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aigcrec.simulate.report import mean_ci


def main() -> None:
    main_dir, extra_dir = Path(sys.argv[1]), Path(sys.argv[2])
    a = json.loads((main_dir / "simulate_details.json").read_text(encoding="utf-8"))
    b = json.loads((extra_dir / "simulate_details.json").read_text(encoding="utf-8"))
    ctr = {n: e["ctr_at_k"]["per_seed"] for n, e in a["policies"].items()}
    ctr["affect_oracle_with_signals"] = b["policies"]["affect_oracle"]["ctr_at_k"]["per_seed"]
    ctr["ceiling_blind"] = b["policies"]["ceiling_blind"]["ctr_at_k"]["per_seed"]
    if a["seeds"] != b["seeds"]:
        raise SystemExit(f"the two runs have different seeds: {a['seeds']} and {b['seeds']}")

    def ratio(num: str, den: str) -> dict:
        m, ci = mean_ci([x / y for x, y in zip(ctr[num], ctr[den])])
        return {"mean": round(m, 4), "ci95": [round(ci[0], 4), round(ci[1], 4)]}

    def lift_share(oracle: str) -> dict:
        vals = [(m - b0) / (o - b0) for m, o, b0 in zip(ctr["affect_mmei"], ctr[oracle], ctr["affect_blind"])]
        m, ci = mean_ci(vals)
        return {"mean": round(m, 4), "ci95": [round(ci[0], 4), round(ci[1], 4)]}

    out = {"seeds": a["seeds"], "k": a["k"],
           "ratios": {f"{n}/affect_blind": ratio(n, "affect_blind") for n in (
               "affect_mmei", "affect_oracle", "affect_oracle_with_signals", "ceiling", "ceiling_blind")},
           "ceiling/ceiling_blind": ratio("ceiling", "ceiling_blind"),
           "mmei_share_of_lift": {o: lift_share(o) for o in ("affect_oracle", "affect_oracle_with_signals")}}
    (main_dir / "ratios.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    lines = [f"# CTR@{a['k']} ratios, seeds {a['seeds']} (per-seed ratios: mean [95% CI])", ""]
    lines += [f"- {n}: {v['mean']:.4f} [{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]"
              for n, v in out["ratios"].items()]
    v = out["ceiling/ceiling_blind"]
    lines.append(f"- ceiling/ceiling_blind: {v['mean']:.4f} [{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]")
    for o, v in out["mmei_share_of_lift"].items():
        lines.append(f"- affect_mmei's share of {o}'s lift over affect_blind: {v['mean']:.4f} "
                     f"[{v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]")
    (main_dir / "ratios.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
