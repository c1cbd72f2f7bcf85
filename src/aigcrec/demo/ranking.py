"""Demo stage: UMAIR-FPS, its ablations and two baselines on the demo's world (warm split, one seed).

Reads ``world_dir``, ``feature_store`` and (if present) ``affect_context``; without the latter the
simulated session state is the affect context. Trained models and results are cached under
``ctx.cache_dir/ranking-<key>`` (key = ranking config, seed, bundle format and input paths); sets ``ranker_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from aigcrec.logs import progress
from aigcrec.ranking.benchmark import taste_aucs
from aigcrec.ranking.bundle import FORMAT_VERSION, RankerBundle
from aigcrec.ranking.data import warm_split, world_dataset
from aigcrec.ranking.experiment import prepare, run_variant
from aigcrec.ranking.trainer import predict
from aigcrec import sources
from aigcrec.sources import read_affect

log = logging.getLogger("aigcrec.ranking")

DEMO_MODELS = ["umair_fps", "umair_fps_no_affect", "dcnv2", "popularity"]
"""The demo trains the full model, the ablation that tests the affect claim, and two baselines; every ablation
over seeds is one command away (:data:`FULL_TABLE_COMMAND`)."""

FULL_TABLE_COMMAND = (
    "aigcrec benchmark ranking --dataset world --data-dir WORLD --seeds 3 --splits warm --models umair_fps,"
    "umair_fps_no_history,umair_fps_no_match,umair_fps_no_style,umair_fps_no_image,umair_fps_no_visual,"
    "umair_fps_no_affect,umair_fps_no_text,umair_fps_concat,umair_fps_no_dcn,popularity "
    "--config benchmarks/ranking_world.yaml --out DIR")


def _key(ctx) -> str:
    # The bundle format is in the key: a ranker cached by an earlier format (2: no affect-context schema,
    # refused beside the affect model at serve time) is retrained, not reused.
    parts = {"ranking": ctx.config.ranking.model_dump(), "seed": ctx.config.seed,
             "bundle_format": FORMAT_VERSION,
             "inputs": {k: str(ctx.artifacts.get(k)) for k in ("world_dir", "feature_store", "affect_context")}}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _train(ctx, cache: Path) -> dict:
    cfg = ctx.config.ranking
    world_dir = ctx.artifacts["world_dir"]
    vectors = sources.content_vectors(world_dir, ctx.artifacts.get("feature_store"), cache, ctx.config.content)
    affect_path = ctx.artifacts.get("affect_context")
    affect = read_affect(affect_path) if affect_path else None
    data = world_dataset(world_dir, vectors, affect)
    prep = prepare(data, warm_split(data.frame), cfg.model.history_len)
    train_cfg = cfg.train.model_copy(update={"max_epochs": cfg.demo_max_epochs})
    rows = []
    with progress() as bar:
        task = bar.add_task("ranking models", total=len(DEMO_MODELS))
        for name in DEMO_MODELS:
            bar.update(task, description=f"ranking: {name}")
            with ctx.step("ranking", name):
                r = run_variant(prep, name, cfg.model, train_cfg, ctx.config.seed)
            rows.append({"model": name, **{k: r.metrics[k] for k in ("auc", "gauc", "logloss")},
                         **taste_aucs(prep, r.test_probs)})
            if name == "umair_fps":
                RankerBundle.from_training(name, r.model, data.frame.iloc[prep.rows["train"]],
                                           {"world_dir": str(world_dir), "metrics": r.metrics}).save(cache / "ranker")
                _, alpha = predict(r.model, prep.parts["test"], with_weights=True)
                taste = dict(zip(data.users["user_id"].astype(str), data.users["taste_type"].astype(str)))
                np.savez(cache / "umcm_weights.npz", alpha=alpha, names=np.array(r.model.modality_names),
                         taste=np.array([taste.get(u, "?") for u in prep.users["test"]]))
            bar.advance(task)
    results = {"rows": rows, "affect_source": "affect_context" if affect_path else "simulated session state"}
    (cache / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def _weights_figure(npz: Path):
    import matplotlib  # lazy: plotting libraries load only when a report draws a figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: plotting libraries load only when a report draws a figure

    data = np.load(npz)
    alpha, names, taste = data["alpha"], [str(n) for n in data["names"]], data["taste"]
    groups = sorted(set(taste.tolist()))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(groups))
    for g_i, g in enumerate(groups):
        a = alpha[taste == g]
        pos = np.arange(len(names)) + g_i * width - 0.4 + width / 2
        ax.boxplot([a[:, m] for m in range(len(names))], positions=pos, widths=width * 0.9, showfliers=False,
                   patch_artist=True, boxprops={"facecolor": f"C{g_i}", "alpha": 0.6})
        ax.plot([], [], color=f"C{g_i}", lw=6, alpha=0.6, label=f"{g} users")
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("UMCM weight α")
    ax.set_title("UMCM modality weights on test impressions, by the user's ground-truth taste type")
    ax.legend(fontsize=8)
    return fig, {g: dict(zip(names, alpha[taste == g].mean(axis=0).round(4).tolist())) for g in groups}


def run(ctx) -> None:
    cache = Path(ctx.cache_dir) / f"ranking-{_key(ctx)}"
    if (cache / "results.json").is_file():
        log.info("ranking: reusing %s", cache)
        results = json.loads((cache / "results.json").read_text(encoding="utf-8"))
    else:
        cache.mkdir(parents=True, exist_ok=True)
        results = _train(ctx, cache)
    ctx.artifacts["ranker_dir"] = str(cache / "ranker")
    rows = {r["model"]: r for r in results["rows"]}
    full = rows["umair_fps"]
    ctx.record("ranking", "umair_fps_auc", full["auc"], headline=True)
    ctx.record("ranking", "umair_fps_gauc", full["gauc"], headline=True)
    ctx.record("ranking", "dcnv2_auc", rows["dcnv2"]["auc"], headline=True)
    ctx.record("ranking", "models", results["rows"])
    ctx.report.section(
        "Ranking: UMAIR-FPS ablations on the world",
        f"Warm split (per-user temporal 80/10/10), seed {ctx.config.seed}; affect context: {results['affect_source']}. "
        "auc_<type> is the test AUC on users of that ground-truth taste type; Δ columns are changes against "
        "the full model (mood-driven users should lose most without affect). The demo trains "
        f"{', '.join(DEMO_MODELS)}; the ablation of every component over seeds (docs/ranking.md, "
        f"benchmarks/results/ranking-world-default/) is `{FULL_TABLE_COMMAND}`.")
    table = []
    for r in results["rows"]:
        row = dict(r)
        for k in [k for k in r if k.startswith("auc_")]:
            row[f"Δ{k}"] = r[k] - full.get(k, float("nan"))
        table.append(row)
    ctx.report.table(table)
    fig, means = _weights_figure(cache / "umcm_weights.npz")
    ctx.record("ranking", "umcm_mean_weights", means)
    ctx.report.figure(fig, "Distribution of UMCM weights per modality, split by taste type (test impressions).")
