"""``aigcrec benchmark topk``: registered above the stages (it composes the ranker and the service)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from aigcrec.cli.common import ConfigOpt, OutOpt, SeedOpt, app_config, benchmark_app, fail
from aigcrec.cli.ranking import AffectOpt, DataDirOpt, DatasetOpt, FeaturesOpt, load_cli_dataset, out_dir

log = logging.getLogger("aigcrec.topk")


def register(app: typer.Typer) -> None:
    """Add ``benchmark topk`` to the CLI."""

    @benchmark_app.command("topk")
    def benchmark_topk(dataset: DatasetOpt = "movielens",
                       data_dir: DataDirOpt = Path("../shared/datasets/movielens-100k"),
                       seeds: Annotated[int, typer.Option(help="Number of seeds (0..N-1).")] = 3,
                       peers: Annotated[bool, typer.Option("--peers", help="Also Cornac BPR/VBPR, implicit ALS/BPR/"
                                                                          "item-kNN, EASE, popularity, and RecBole "
                                                                          "LightGCN where `make bench-recbole` "
                                                                          "made its environment.")] = False,
                       peer: Annotated[list[str] | None, typer.Option("--peer", help="Only this peer (repeatable; "
                                                                       "e.g. ease): the others are not run.")] = None,
                       served_only: Annotated[bool, typer.Option("--served-only", help="aigcrec rows: only the "
                                                                 "served and retrieval rows on the test task (no "
                                                                 "ranker over every item, no cold-item task).")] = False,
                       peers_only: Annotated[bool, typer.Option("--peers-only", help="Run only the peers "
                                                                "(--peers or --peer): no aigcrec row is computed; "
                                                                "those cached are shown.")] = False,
                       gather: Annotated[bool, typer.Option("--gather", help="Compute nothing: write topk.json/md "
                                                            "from the runs already under OUT/runs (seeds run in "
                                                            "separate processes, or an interrupted run).")] = False,
                       features: FeaturesOpt = None, affect: AffectOpt = None,
                       config: ConfigOpt = None, seed: SeedOpt = None, out: OutOpt = None) -> None:
        """Top-K over the whole catalog (per-user temporal split, cold-item variant): the served pipeline,
        its retrieval stage, the ranker over every item (and peers); topk.json + topk.md."""
        from aigcrec.topk.runner import run_topk

        cfg = app_config(config, seed, out)
        if seeds < 1:
            fail(f"--seeds: expected at least 1, got {seeds}", code=2)
        if peer:
            peers = list(peer)
        if peers:
            try:
                import cornac  # noqa: F401
                import implicit  # noqa: F401
            except ImportError as exc:
                fail(f"--peers needs the bench extra (pip install -e '.[bench]'): {exc}")

        dest = out_dir(cfg, f"topk-{dataset}")
        data = load_cli_dataset(dataset, data_dir, features, affect, cfg)
        try:
            result = run_topk(data, dataset, data_dir, cfg, [cfg.seed + i for i in range(seeds)], peers, dest,
                              gather=gather, served_only=served_only, peers_only=peers_only)
        except ValueError as exc:
            fail(str(exc), code=2)
            return
        log.info("wrote %s and %s", dest / "topk.json", dest / "topk.md")
        for name, m in result["models"].items():
            log.info("%-20s NDCG@10 %.4f ± %.4f  Recall@20 %.4f  cold Recall@20 %.4f", name, m["ndcg_at_10_mean"],
                     m["ndcg_at_10_std"], m["recall_at_20_mean"], m.get("cold_recall_at_20_mean", float("nan")))
