"""Figures of a simulation: per run, then mean and 95 % interval over seeds; curves over simulated time;
``simulate.json`` (exactly the keys of issue 18), ``simulate_details.json``, ``simulate.md`` and
``simulate.html``.

Per run (one policy, one seed), over its sessions:

- CTR@k = bookmarks / items shown (the world has one engagement event, the bookmark of its click model);
- bookmarks per session = bookmarks / sessions (k x CTR@k when every slate is full);
- utility = mean over sessions of the sum of the shown items' true expected probabilities;
- ceiling share = sum of utilities / sum of the ceiling's utilities (the k best unseen items of each session);
- new-item exposure = shown items that were posted during the run / items shown; new-item CTR their CTR;
- coverage = distinct items shown / items in the catalog at the end;
- diversity = mean intra-list diversity (share of style, subject, palette two shown items differ in).

The 95 % interval over S seeds is mean +- t(0.975, S-1) * sd / sqrt(S) (the mean alone for one seed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from aigcrec.report import Report

if TYPE_CHECKING:  # the runner imports this module
    from aigcrec.simulate.runner import RunResult

METRICS = ("ctr_at_k", "bookmarks_per_session", "utility", "ceiling_share", "new_item_exposure",
           "new_item_ctr", "coverage", "diversity", "latency_p50_ms")
JSON_METRICS = ("bookmarks_per_session", "utility", "ceiling_share", "new_item_exposure", "coverage",
                "diversity")
BASELINE = "affect_blind"


def run_metrics(res: "RunResult") -> dict[str, float]:
    r = res.records
    shown, new_shown = float(r["shown"].sum()), float(r["new_shown"].sum())
    lat = r["latency_ms"].dropna()
    return {"ctr_at_k": float(r["clicks"].sum()) / shown if shown else math.nan,
            "bookmarks_per_session": float(r["clicks"].mean()) if len(r) else math.nan,
            "utility": float(r["utility"].mean()) if len(r) else math.nan,
            "ceiling_share": float(r["utility"].sum() / r["ceiling_utility"].sum()) if len(r) else math.nan,
            "new_item_exposure": new_shown / shown if shown else math.nan,
            "new_item_ctr": float(r["new_clicks"].sum()) / new_shown if new_shown else math.nan,
            "coverage": res.coverage,
            "diversity": float(np.nanmean(r["diversity"])) if r["diversity"].notna().any() else math.nan,
            "latency_p50_ms": float(lat.median()) if len(lat) else math.nan}


def mean_ci(values: Sequence[float]) -> tuple[float, list[float]]:
    """Mean and t-interval (95 %) of per-seed values, NaNs left out (NaN when none)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if len(v) == 0:
        return math.nan, [math.nan, math.nan]
    m = float(v.mean())
    if len(v) == 1:
        return m, [m, m]
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, [m - half, m + half]


def curves(res: "RunResult", bins: int, n_sessions: int) -> pd.DataFrame:
    """Per bin of simulated time (session position): CTR@k, ceiling share, new-item exposure."""
    r = res.records.assign(bin=lambda d: (d["session"] * bins // max(1, n_sessions)).clip(upper=bins - 1))
    g = r.groupby("bin")
    return pd.DataFrame({"ctr_at_k": g["clicks"].sum() / g["shown"].sum(),
                         "ceiling_share": g["utility"].sum() / g["ceiling_utility"].sum(),
                         "new_item_exposure": g["new_shown"].sum() / g["shown"].sum()})


def _r(x: float) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 5)


def summarise(results: list["RunResult"], k: int, seeds: list[int], bins: int) -> dict[str, Any]:
    """Per policy: per-seed values, mean and interval of every metric, curves; ratios against affect_blind."""
    per: dict[str, dict[int, dict[str, float]]] = {}
    for res in results:
        per.setdefault(res.policy, {})[res.seed] = run_metrics(res)
    policies: dict[str, Any] = {}
    for name, by_seed in per.items():
        entry: dict[str, Any] = {"seeds": sorted(by_seed)}
        for m in METRICS:
            vals = [by_seed[s][m] for s in sorted(by_seed)]
            mean, ci = mean_ci(vals)
            entry[m] = {"mean": _r(mean), "ci95": [_r(ci[0]), _r(ci[1])], "per_seed": [_r(v) for v in vals]}
        runs = [r for r in results if r.policy == name]
        n_sessions = max(len(r.records) for r in runs)
        cur = [curves(r, bins, n_sessions) for r in runs]
        mean_curve = pd.concat(cur).groupby(level=0).mean()
        entry["curves"] = {c: [_r(v) for v in mean_curve[c]] for c in mean_curve.columns}
        entry["truncated"] = [r.truncated for r in runs if r.truncated]
        policies[name] = entry
    ratios: dict[str, Any] = {}
    if BASELINE in per:
        base = per[BASELINE]
        for name, by_seed in per.items():
            common = sorted(set(by_seed) & set(base))
            vals = [by_seed[s]["ctr_at_k"] / base[s]["ctr_at_k"] for s in common if base[s]["ctr_at_k"] > 0]
            mean, ci = mean_ci(vals)
            ratios[f"{name}/{BASELINE}"] = {"mean": _r(mean), "ci95": [_r(ci[0]), _r(ci[1])],
                                            "per_seed": [_r(v) for v in vals]}
        if "affect_mmei" in per and "affect_oracle" in per:
            ctr = {n: policies[n]["ctr_at_k"]["mean"] for n in (BASELINE, "affect_mmei", "affect_oracle")}
            lift_o = ctr["affect_oracle"] - ctr[BASELINE]
            ratios["mmei_share_of_oracle_lift"] = (
                _r((ctr["affect_mmei"] - ctr[BASELINE]) / lift_o) if lift_o > 0 else None)
    return {"k": k, "seeds": seeds, "policies": policies, "ctr_ratios": ratios}


def issue_json(summary: dict[str, Any]) -> dict[str, Any]:
    """``simulate.json``: exactly the keys of issue 18."""
    out: dict[str, Any] = {"k": summary["k"], "seeds": summary["seeds"], "policies": {}}
    for name, e in summary["policies"].items():
        row = {"ctr_at_k_mean": e["ctr_at_k"]["mean"], "ctr_at_k_ci95": e["ctr_at_k"]["ci95"]}
        row.update({f"{m}_mean": e[m]["mean"] for m in JSON_METRICS})
        out["policies"][name] = row
    return out


def _fmt(e: dict[str, Any], m: str, digits: int = 4) -> str:
    mean, (lo, hi) = e[m]["mean"], e[m]["ci95"]
    if mean is None:
        return "–"
    if lo is None or lo == hi:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table_rows(summary: dict[str, Any]) -> list[dict[str, str]]:
    k = summary["k"]
    rows = []
    for name, e in summary["policies"].items():
        rows.append({"policy": name, f"CTR@{k} [95% CI]": _fmt(e, "ctr_at_k"),
                     "bookmarks/session": _fmt(e, "bookmarks_per_session", 3),
                     "utility": _fmt(e, "utility", 3), "ceiling share": _fmt(e, "ceiling_share", 3),
                     "new-item exposure": _fmt(e, "new_item_exposure"),
                     "new-item CTR": _fmt(e, "new_item_ctr"), "coverage": _fmt(e, "coverage", 3),
                     "diversity": _fmt(e, "diversity", 3), "p50 ms": _fmt(e, "latency_p50_ms", 0)})
    return rows


def markdown(summary: dict[str, Any], setting: dict[str, Any]) -> str:
    rows = table_rows(summary)
    cols = list(rows[0])
    lines = [f"# Online simulation (`aigcrec simulate`): k = {summary['k']}, seeds {summary['seeds']}", "",
             "Setting: " + ", ".join(f"{k} {v}" for k, v in setting.items()), "",
             "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c == "policy" else "---:" for c in cols) + "|"]
    lines += ["| " + " | ".join(r[c] for c in cols) + " |" for r in rows]
    ratios = summary.get("ctr_ratios", {})
    if ratios:
        lines += ["", f"CTR@{summary['k']} ratios against {BASELINE} (mean of per-seed ratios [95% CI]):", ""]
        for name, v in ratios.items():
            if isinstance(v, dict) and v["mean"] is not None:
                lo, hi = v["ci95"]
                lines.append(f"- {name}: {v['mean']:.4f} [{lo:.4f}, {hi:.4f}]")
            elif v is not None and not isinstance(v, dict):
                lines.append(f"- {name} (affect_mmei's CTR lift over {BASELINE} / affect_oracle's): {v:.4f}")
    trunc = {n: e["truncated"] for n, e in summary["policies"].items() if e["truncated"]}
    if trunc:
        lines += ["", f"Truncated runs: {trunc}"]
    return "\n".join(lines) + "\n"


def _figures(summary: dict[str, Any]):
    import matplotlib  # lazy: plotting libraries load only when a report draws a figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting libraries load only when a report draws a figure

    k = summary["k"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, e in summary["policies"].items():
        for ax, key in zip(axes, ("ctr_at_k", "ceiling_share", "new_item_exposure")):
            y = [np.nan if v is None else v for v in e["curves"][key]]
            ax.plot(np.arange(1, len(y) + 1), y, marker="o", ms=3, label=name)
    for ax, title in zip(axes, (f"CTR@{k}", "share of the ceiling's utility", "new-item exposure share")):
        ax.set_title(title)
        ax.set_xlabel("simulated time (bin of sessions)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    bars, ax = plt.subplots(figsize=(8, 3.5))
    names = list(summary["policies"])
    means = [summary["policies"][n]["ctr_at_k"]["mean"] or 0.0 for n in names]
    ci = [summary["policies"][n]["ctr_at_k"]["ci95"] for n in names]
    err = np.array([[m - (c[0] if c[0] is not None else m), (c[1] if c[1] is not None else m) - m]
                    for m, c in zip(means, ci)]).T
    ax.bar(names, means, yerr=err, capsize=4, color=[f"C{i}" for i in range(len(names))])
    ax.set_ylabel(f"CTR@{k}")
    ax.set_title(f"CTR@{k} per policy, mean and 95 % interval over seeds")
    return fig, bars


def write_report(results: list["RunResult"], k: int, seeds: list[int], setting: dict[str, Any], out: Path,
                 bins: int = 10) -> dict[str, Any]:
    """Write every output file into ``out``; returns ``simulate.json``'s content."""
    out = Path(out)
    summary = summarise(results, k, seeds, bins)
    details = {**summary, "setting": setting, "runs": [r.to_json() for r in results]}
    (out / "simulate_details.json").write_text(json.dumps(details, indent=1), encoding="utf-8")
    doc = issue_json(summary)
    (out / "simulate.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out / "simulate.md").write_text(markdown(summary, setting), encoding="utf-8")
    report = Report("aigcrec simulate: an online A/B through the HTTP service")
    add_to_report(report, summary, setting)
    report.write(out / "simulate.html")
    return doc


def add_to_report(report: Report, summary: dict[str, Any], setting: dict[str, Any]) -> None:
    """The table, the ratios and the curves as a section of ``report`` (the demo's, or simulate.html)."""
    report.section(
        "Online simulation through the HTTP service",
        f"Each policy serves the same re-enacted world sessions (seeds {summary['seeds']}); the world's true "
        "click model decides bookmarks, posted back as feedback; held-out items arrive through "
        "POST /v1/items. "
        "Setting: " + ", ".join(f"{k} {v}" for k, v in setting.items()) + ". See docs/simulate.md.")
    report.table(table_rows(summary))
    ratios = {n: v for n, v in summary.get("ctr_ratios", {}).items() if isinstance(v, dict)}
    if ratios:
        report.table([{"ratio": n, "mean": v["mean"], "95% CI": str(v["ci95"])} for n, v in ratios.items()],
                     caption=f"CTR@{summary['k']} against {BASELINE} (per-seed ratios)")
    curves_fig, bars = _figures(summary)
    report.figure(bars, "CTR@k per policy (mean and 95 % interval over seeds).")
    report.figure(curves_fig, "Curves over simulated time (mean over seeds): CTR@k, the share of the "
                              "ceiling's utility reached, and the share of shown items posted during the "
                              "run.")
