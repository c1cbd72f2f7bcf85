"""Commands of the ranking stage: train / evaluate / export the ranker and benchmark ranking."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, app_config, benchmark_app, evaluate_app, export_app, fail, train_app
from aigcrec.cli.distributed import AddressOpt, EngineOpt, WorkersOpt, check_engine

log = logging.getLogger("aigcrec.ranking")

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", help="movielens (MovieLens-with-posters format), world, catalog (items.csv + images + "
                      "interactions.csv), or context (context-aware rating layout).")]
ContextOpt = Annotated[str, typer.Option(
    "--context", help="Context datasets: the context columns to use, comma-separated, or 'all'.")]
ThresholdOpt = Annotated[Optional[float], typer.Option(
    "--threshold", help="Context datasets: label = rating >= this (default 4 on a 1-5 scale, else the midpoint).")]
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="Dataset folder in that format.")]
FeaturesOpt = Annotated[Optional[Path], typer.Option(
    "--features", help="Feature store folder (aigcrec encode); default: encode the catalog once into "
                       "runs/cache/ranking-content-<dataset>-<hash of DIR> (reused by later runs).")]
AffectOpt = Annotated[Optional[Path], typer.Option(
    "--affect", help="World only: affect context per session (Parquet/CSV); default: the simulated session state.")]
EventsOpt = Annotated[Optional[Path], typer.Option(
    "--events", help="A service's SQLite file (aigcrec serve --db): retrain on its event log instead of the "
                     "folder's interactions: each served list's items are impressions (clicked or bookmarked = 1, "
                     "served and not clicked = 0) with the affect reading they were served in as the affect "
                     "context; other events: bookmark = 1, seen = 0. The folder still gives user/item fields.")]
RankerOpt = Annotated[Path, typer.Option("--ranker", help="Folder of a trained ranker (aigcrec train ranker).")]


def load_cli_dataset(dataset: str, data_dir: Path, features: Path | None, affect: Path | None, cfg,
             events: Path | None = None, context: str = "all", threshold: float | None = None):
    import hashlib

    from aigcrec.data.errors import DataError
    from aigcrec.sources import DATASETS, load_dataset

    if dataset not in DATASETS:
        fail(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}", code=2)
    if not data_dir.is_dir():
        fail(f"--data-dir: folder not found: {data_dir}", code=2)
    if events is not None and not events.is_file():
        fail(f"--events: no service database at {events} (expected the SQLite file `aigcrec serve` writes)", code=2)
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    cache = Path("runs") / "cache" / f"ranking-content-{dataset}-{digest}"
    columns = "all" if context.strip() == "all" else [c.strip() for c in context.split(",") if c.strip()]
    try:
        return load_dataset(dataset, data_dir, cache, features, affect, cfg.content, events, columns, threshold)
    except DataError as exc:
        fail(str(exc))
    except ValueError as exc:
        if events is None and dataset != "context":
            raise
        fail(str(exc), code=2)


def saved_ranker(ranker: Path):
    """The ``RankerBundle`` saved at ``ranker``, or exit 2 saying why it is not one."""
    from aigcrec.config_base import ConfigError
    from aigcrec.ranking.bundle import RankerBundle

    try:
        return RankerBundle.load(ranker)
    except (FileNotFoundError, ConfigError) as exc:
        fail(str(exc), code=2)


def out_dir(cfg, default: str) -> Path:
    out = Path(cfg.out) if str(cfg.out) != "runs" else Path("runs") / default
    out.mkdir(parents=True, exist_ok=True)
    return out


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the CLI (top-level ones on ``app``, others on the shared groups)."""

    @train_app.command("ranker")
    def train_ranker(dataset: DatasetOpt = "movielens", data_dir: DataDirOpt = Path("../shared/datasets/movielens-100k"),
                     model: Annotated[str, typer.Option(help="Model variant (umair_fps, dcnv2, ...).")] = "umair_fps",
                     features: FeaturesOpt = None, affect: AffectOpt = None, events: EventsOpt = None,
                     context: ContextOpt = "all", threshold: ThresholdOpt = None,
                     config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None,
                     engine: EngineOpt = "local", address: AddressOpt = None, workers: WorkersOpt = None) -> None:
        """Train a ranker on the warm split (early stopping on validation AUC); save it to OUT/ranker.

        ``--events DB`` retrains from a running service's event log (its SQLite file). A context dataset
        (no timestamps) trains on a random 80/10/10 split drawn with the seed.
        ``--engine ray`` runs the same training as DDP on a Ray cluster (``--workers`` processes; default
        distributed.train_workers; ``--address`` default distributed.address)."""
        import functools

        from aigcrec.ranking.data import random_split
        from aigcrec.ranking.experiment import VARIANTS, run_variant

        cfg = app_config(config, seed, out)
        if model not in VARIANTS or model == "popularity":
            fail(f"--model: expected one of {sorted(set(VARIANTS) - {'popularity'})}, got {model!r}", code=2)
        dest = out_dir(cfg, "ranker")
        runner = run_variant
        if check_engine(engine) == "ray":
            from aigcrec.distributed.train import run_variant_ray

            dist = cfg.distributed
            runner = functools.partial(run_variant_ray, workers=workers or dist.train_workers,
                                       address=address or dist.address, storage_dir=dist.storage_under(dest))
        data = load_cli_dataset(dataset, data_dir, features, affect, cfg, events, context, threshold)
        rows = random_split(data.frame, cfg.seed) if dataset == "context" else None  # no timestamps there
        from aigcrec.ranking.experiment import train_and_save
        from aigcrec.distributed.cluster import RayUnavailable

        try:
            metrics = train_and_save(data, model, cfg, dest, runner,
                                     {"dataset": dataset, "data_dir": str(data_dir),
                                      "events": str(events) if events else None}, rows)
        except RayUnavailable as exc:
            fail(str(exc), 2)
            return
        log.info("test %s; ranker saved to %s", {k: round(v, 4) for k, v in metrics.items()}, dest / "ranker")

    @evaluate_app.command("ranker")
    def evaluate_ranker(ranker: RankerOpt, dataset: DatasetOpt = "movielens",
                        data_dir: DataDirOpt = Path("../shared/datasets/movielens-100k"),
                        features: FeaturesOpt = None, affect: AffectOpt = None,
                        context: ContextOpt = "all", threshold: ThresholdOpt = None,
                        config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None) -> None:
        """Score the warm split's test part with a saved ranker (a context dataset: the random split of the
        seed, as ``train ranker`` drew it); write OUT/metrics.json."""
        import numpy as np

        from aigcrec.metrics import auc, gauc, logloss
        from aigcrec.ranking.data import add_history, random_split, warm_split
        from aigcrec.ranking.trainer import predict

        cfg = app_config(config, seed, out)
        bundle = saved_ranker(ranker)
        dest = out_dir(cfg, "ranker-eval")
        data = load_cli_dataset(dataset, data_dir, features, affect, cfg, context=context, threshold=threshold)
        rows = random_split(data.frame, cfg.seed) if dataset == "context" else warm_split(data.frame)
        frame = data.frame
        for f in bundle.spec.history:  # the users' earlier positives among the split's training rows
            frame = add_history(frame, rows["train"], f.max_len, f.column)
        test = frame.iloc[rows["test"]]
        probs = predict(bundle.model, bundle.spec.encode(test))
        y, users = test["label"].to_numpy(np.float32), test["user_id"].astype(str).to_numpy()
        metrics = {"auc": auc(y, probs), "logloss": logloss(y, probs), "gauc": gauc(users, y, probs), "rows": len(test)}
        (dest / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
        log.info("test %s (written to %s)", metrics, dest / "metrics.json")

    @export_app.command("ranker")
    def export_ranker(ranker: RankerOpt, config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None) -> None:
        """Export a saved ranker to OUT/ranker.onnx (dynamic batch) and check it against torch at batch 1 and 1000."""
        from aigcrec.ranking.export import check_export

        cfg = app_config(config, seed, out)
        bundle = saved_ranker(ranker)
        dest = out_dir(cfg, "ranker-onnx")
        report = check_export(bundle, dest / "ranker.onnx")
        (dest / "export.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        if report["max_abs_diff"] > 1e-5:
            fail(f"ONNX outputs differ from torch by {report['max_abs_diff']:.2e} (> 1e-5); see {dest / 'export.json'}")
        log.info("exported %s; max |onnx - torch| = %.2e", dest / "ranker.onnx", report["max_abs_diff"])

    @benchmark_app.command("ranking")
    def benchmark_ranking(dataset: DatasetOpt = "movielens",
                          data_dir: DataDirOpt = Path("../shared/datasets/movielens-100k"),
                          seeds: Annotated[int, typer.Option(help="Number of seeds (0..N-1).")] = 3,
                          peers: Annotated[bool, typer.Option(
                              "--peers", help="Also DeepCTR-Torch DCNMix and FuxiCTR DCNv2; '--peers all': also "
                                              "FuxiCTR DeepFM, xDeepFM, DCN, DIFM, EDCN, FiBiNET and FinalMLP (the "
                                              "UMAIR-FPS authors' baselines).")] = False,
                          peer_set: Annotated[Optional[str], typer.Argument(
                              hidden=True, metavar="[all]", help="'all' after --peers: every peer.")] = None,
                          models: Annotated[Optional[str], typer.Option(help="Comma-separated variants (default: all for the dataset).")] = None,
                          splits: Annotated[Optional[str], typer.Option(
                              help="Comma-separated splits: warm (required) and cold; context datasets: random "
                                   "(required) and cold_user. Default: all of the dataset's.")] = None,
                          features: FeaturesOpt = None, affect: AffectOpt = None,
                          context: ContextOpt = "all", threshold: ThresholdOpt = None,
                          task: Annotated[str, typer.Option(
                              help="Context datasets: ctr (label = rating >= threshold; AUC, logloss, gAUC) or "
                                   "rating (RMSE, MAE).")] = "ctr",
                          config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None) -> None:
        """UMAIR-FPS, ablations and baselines (and peers) on the warm and cold-item splits; ranking.json + ranking.md.

        ``--dataset context``: every model with and without the context columns (``--context``) on per-seed
        random and cold-user splits, with per-value lift and paired tests (docs/ranking.md)."""
        from aigcrec.ranking.benchmark import MOVIELENS_MODELS, WORLD_MODELS, run_benchmark
        from aigcrec.ranking.experiment import VARIANTS

        cfg = app_config(config, seed, out)
        if seeds < 1:
            fail(f"--seeds: expected at least 1, got {seeds}", code=2)
        if peer_set is not None and (peer_set != "all" or not peers):
            fail(f"unexpected argument {peer_set!r}; the only one is 'all' after --peers (--peers all)", code=2)
        if dataset == "context":
            _benchmark_context(data_dir, features, context, threshold, task, splits, peers, models, seeds, cfg)
            return
        splits = splits or "warm,cold"
        split_names = tuple(s.strip() for s in splits.split(",") if s.strip())
        if "warm" not in split_names or set(split_names) - {"warm", "cold"}:
            fail(f"--splits: expected 'warm' or 'warm,cold', got {splits!r}", code=2)
        names = models.split(",") if models else (MOVIELENS_MODELS if dataset == "movielens" else WORLD_MODELS)
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            fail(f"--models: unknown {unknown}; expected names from {sorted(VARIANTS)}", code=2)
        _check_peers(peers)
        dest = out_dir(cfg, f"ranking-{dataset}")
        data = load_cli_dataset(dataset, data_dir, features, affect, cfg)
        result = run_benchmark(data, cfg.ranking, [cfg.seed + i for i in range(seeds)], names,
                               "all" if peer_set == "all" else peers, dest, split_names)
        log.info("wrote %s and %s", dest / "ranking.json", dest / "ranking.md")
        for name, m in result["models"].items():
            log.info("%-22s auc %.4f ± %.4f  cold auc %.4f", name, m["auc_mean"], m["auc_std"],
                     m.get("cold_auc_mean", float("nan")))


def _check_peers(peers: bool) -> None:
    if peers:
        try:
            import deepctr_torch  # noqa: F401
            import fuxictr  # noqa: F401
        except ImportError as exc:
            fail(f"--peers needs the bench extra (pip install -e '.[bench]'): {exc}")


def _benchmark_context(data_dir: Path, features: Path | None, context: str, threshold: float | None, task: str,
                       splits: str | None, peers: bool, models: str | None, seeds: int, cfg) -> None:
    """``benchmark ranking --dataset context``: see ``aigcrec.ranking.context_benchmark``."""
    from aigcrec.ranking.context_benchmark import SPLITS, run_context_benchmark

    if task not in ("ctr", "rating"):
        fail(f"--task: expected 'ctr' or 'rating', got {task!r}", code=2)
    if models:
        fail("--models: a context benchmark runs a fixed set (umair_fps, fm, peers; each with and without the "
             "context); leave --models out", code=2)
    split_names = tuple(s.strip() for s in (splits or ",".join(SPLITS)).split(",") if s.strip())
    if "random" not in split_names or set(split_names) - set(SPLITS):
        fail(f"--splits: expected 'random' or 'random,cold_user' for a context dataset, got {splits!r}", code=2)
    _check_peers(peers)
    data = load_cli_dataset("context", data_dir, features, None, cfg, context=context, threshold=threshold)
    dest = out_dir(cfg, f"ranking-context-{data.name.split(':', 1)[-1]}")
    from aigcrec.data.context import load_context

    used = threshold if threshold is not None else load_context(data_dir).default_threshold()
    try:
        result = run_context_benchmark(data, cfg.ranking, [cfg.seed + i for i in range(seeds)], peers, dest, task,
                                       used, split_names)
    except ValueError as exc:
        fail(str(exc), code=2)
    log.info("wrote %s and %s", dest / "ranking.json", dest / "ranking.md")
    key = "auc" if task == "ctr" else "rmse"
    for name, m in result["models"].items():
        log.info("%-26s %s %.4f ± %.4f", name, key, m[f"{key}_mean"], m[f"{key}_std"])
    if "checks" in result:
        log.info("target (%s): %s", result["checks"]["target"], "met" if result["checks"]["met"] else "NOT met")
