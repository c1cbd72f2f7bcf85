"""The ranking stage on a generated world and on MovieLens: datasets, CLI commands, demo stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import dataset_dir

TINY_RANKING = {"model": {"embedding_dim": 4, "tower_units": [16, 8], "modality_dim": 8, "low_rank": 4,
                          "num_experts": 2, "dnn_units": [8], "dropout": 0.0},
                "train": {"batch_size": 256, "max_epochs": 2}, "demo_max_epochs": 1}


@pytest.fixture(scope="module")
def world_store(tiny_world, tmp_path_factory):
    """A stand-in for the content stage's feature store: random e_sem / e_sty / e_tsem per world item.

    ``content_vectors`` (the one place the ranking stage reads a store) is patched, so these tests do not
    depend on encoding the catalog (tested by the content stage).
    """
    from aigcrec import sources
    from aigcrec.world import load_world

    ids = load_world(tiny_world, check_files=False).items["item_id"].tolist()
    rng = np.random.default_rng(0)
    vectors = {m: (ids, rng.normal(size=(len(ids), d)).astype(np.float32)) for m, d in (("e_sem", 6), ("e_sty", 5), ("e_tsem", 4))}
    seen = []

    def fake(data_dir, features_dir, cache_dir, content_config=None):
        seen.append(features_dir)
        return vectors

    out = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources, "content_vectors", fake)
        yield out
    assert seen and all(str(s) == str(out) for s in seen)  # the --features folder reached the loader


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump({"ranking": TINY_RANKING}), encoding="utf-8")
    return path


def test_world_dataset_uses_no_ground_truth_fields(tiny_world):
    from aigcrec.data.schemas import EMOTIONS
    from aigcrec.ranking.data import world_dataset
    from aigcrec.world import load_world

    w = load_world(tiny_world, check_files=False)
    data = world_dataset(tiny_world, {"e_sty": (w.items["item_id"].tolist(), np.ones((len(w.items), 3), np.float32))})
    names = {f.column for f in data.fields}
    assert not names & {"style", "subject", "palette", "taste_type", "emotion", "intent"}
    assert len(data.frame) == len(w.interactions)
    keys, affect = data.vectors["affect"]
    assert affect.shape == (len(w.sessions), len(EMOTIONS) + w.sessions["intent"].nunique())
    assert np.allclose(affect.sum(1), 2.0)  # one-hot emotion + one-hot intent
    assert "taste_type" in data.users.columns


def test_affect_context_of_any_width_is_accepted(tiny_world, tmp_path):
    import pandas as pd

    from aigcrec.ranking.data import world_dataset
    from aigcrec.sources import read_affect
    from aigcrec.world import load_world

    w = load_world(tiny_world, check_files=False)
    table = pd.DataFrame(np.random.default_rng(0).random((len(w.sessions), 11)), columns=[f"a{i}" for i in range(11)])
    table.insert(0, "session_id", w.sessions["session_id"].to_numpy())
    table.to_parquet(tmp_path / "affect.parquet")
    data = world_dataset(tiny_world, {}, read_affect(tmp_path / "affect.parquet"))
    assert data.vectors["affect"][1].shape == (len(w.sessions), 11)
    table.assign(a0="x").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="must be numeric"):
        read_affect(tmp_path / "bad.csv")


def test_cli_train_evaluate_export(tiny_world, world_store, config_file, tmp_path):
    from aigcrec.cli.main import app

    runner = CliRunner()
    common = ["--dataset", "world", "--data-dir", str(tiny_world), "--features", str(world_store),
              "--config", str(config_file)]
    res = runner.invoke(app, ["train", "ranker", *common, "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t" / "ranker" / "config.json").is_file()
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert 0.0 <= metrics["auc"] <= 1.0
    res = runner.invoke(app, ["evaluate", "ranker", "--ranker", str(tmp_path / "t" / "ranker"), *common,
                              "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert again["auc"] == pytest.approx(metrics["auc"], abs=1e-6)
    res = runner.invoke(app, ["export", "ranker", "--ranker", str(tmp_path / "t" / "ranker"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "x" / "export.json").read_text())
    assert report["max_abs_diff"] <= 1e-5 and set(report["per_size"]) == {"1", "1000"}


def test_cli_train_ranker_from_service_event_log(tiny_world, world_store, config_file, tmp_path):
    from aigcrec.cli.main import app
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.service.assemble import read_serving_catalog
    from aigcrec.service.store import ServiceStore, interactions_from_db

    db = tmp_path / "service.sqlite"
    store = ServiceStore(db)
    _, items, events = read_serving_catalog(tiny_world)
    store.import_catalog(items, events[: len(events) // 2])  # the catalog's past, then live feedback
    item_ids = [it["item_id"] for it in items]
    live = [{"user_id": "live-user", "item_id": item_ids[k], "type": "bookmark" if k % 2 else "impression",
             "ts": 1e10 + k, "session_id": "live-session"} for k in range(10)]
    store.append_events(live)
    store.close()
    expected = interactions_from_db(db)

    runner = CliRunner()
    common = ["--dataset", "world", "--data-dir", str(tiny_world), "--features", str(world_store),
              "--config", str(config_file)]
    res = runner.invoke(app, ["train", "ranker", *common, "--events", str(db), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    bundle = RankerBundle.load(tmp_path / "t" / "ranker")
    assert bundle.meta["events"] == str(db) and bundle.meta["interactions"] == len(expected) < len(events)
    assert "live-user" in bundle.spec.state["user_id"]["vocab"]  # the live user's feedback reached training
    res = runner.invoke(app, ["train", "ranker", *common, "--events", str(tmp_path / "none.sqlite")])
    assert res.exit_code == 2 and "none.sqlite" in res.output


def test_cli_rejects_bad_arguments(tmp_path):
    from aigcrec.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["train", "ranker", "--dataset", "criteo", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "movielens" in res.output
    res = runner.invoke(app, ["benchmark", "ranking", "--models", "umair_fps,bogus", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "bogus" in res.output
    res = runner.invoke(app, ["export", "ranker", "--ranker", str(tmp_path)])
    assert res.exit_code == 2 and "not a saved ranker" in res.output
    res = runner.invoke(app, ["benchmark", "ranking", "--splits", "cold", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "--splits" in res.output
    res = runner.invoke(app, ["benchmark", "ranking", "--peers", "some", "--data-dir", str(tmp_path)])
    assert res.exit_code == 2 and "'all' after --peers" in res.output
    res = runner.invoke(app, ["benchmark", "ranking", "all", "--data-dir", str(tmp_path)])  # 'all' needs --peers
    assert res.exit_code == 2 and "'all' after --peers" in res.output


def test_benchmark_warm_split_only_and_no_visual_variant(tiny_world, world_store, config_file, tmp_path):
    from aigcrec.cli.main import app
    from aigcrec.ranking.experiment import variant_config
    from aigcrec.ranking.config import ModelConfig

    assert variant_config("umair_fps_no_visual", ModelConfig())[1].use_modalities == ["e_tsem"]
    res = CliRunner().invoke(app, ["benchmark", "ranking", "--dataset", "world", "--data-dir", str(tiny_world),
                                   "--features", str(world_store), "--config", str(config_file), "--seeds", "1",
                                   "--models", "umair_fps_no_visual", "--splits", "warm", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "ranking.json").read_text())
    m = result["models"]["umair_fps_no_visual"]
    assert np.isfinite(m["auc_mean"]) and "cold_auc_mean" not in m and m["runs"]["cold"] == []
    assert "cold_test" not in result["rows"] and not list((tmp_path / "runs").glob("*/cold-*.json"))
    assert "| umair_fps_no_visual |" in (tmp_path / "ranking.md").read_text()


def test_cli_benchmark_world_writes_json_and_table(tiny_world, world_store, config_file, tmp_path):
    from aigcrec.cli.main import app

    res = CliRunner().invoke(app, ["benchmark", "ranking", "--dataset", "world", "--data-dir", str(tiny_world),
                                   "--features", str(world_store), "--config", str(config_file), "--seeds", "2",
                                   "--models", "umair_fps,umair_fps_no_style,popularity", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "ranking.json").read_text())
    assert set(result["models"]) == {"umair_fps", "umair_fps_no_style", "popularity"}
    m = result["models"]["umair_fps"]
    for key in ("auc_mean", "auc_std", "logloss_mean", "gauc_mean", "cold_auc_mean", "train_samples_per_s"):
        assert np.isfinite(m[key]), key
    assert len(m["runs"]["warm"]) == 2 and any(k.startswith("auc_style") for k in m)
    table = (tmp_path / "ranking.md").read_text()
    assert "| umair_fps |" in table and "taste type" in table


def test_demo_stage_trains_reports_and_reuses_its_cache(tiny_world, world_store, tmp_path):
    from aigcrec.config import AppConfig
    from aigcrec.demo import DemoContext
    from aigcrec.demo import ranking as demo
    from aigcrec.report import Report

    cfg = AppConfig.model_validate({"ranking": TINY_RANKING})

    def context() -> DemoContext:
        ctx = DemoContext(config=cfg, run_dir=tmp_path, cache_dir=tmp_path / "cache", report=Report("t"))
        ctx.artifacts.update(world_dir=str(tiny_world), feature_store=str(world_store))
        return ctx

    ctx = context()
    demo.run(ctx)
    assert (Path(ctx.artifacts["ranker_dir"]) / "config.json").is_file()
    assert {"umair_fps_auc", "umair_fps_gauc", "dcnv2_auc"} <= {r["metric"] for r in ctx.summary}
    html = ctx.report.to_html()
    assert "umair_fps_no_affect" in html and "<img" in html
    ctx2 = context()
    demo.run(ctx2)  # cached: same numbers
    assert ctx2.metrics["ranking"]["umair_fps_auc"] == ctx.metrics["ranking"]["umair_fps_auc"]


def test_movielens_dataset_fields_and_label():
    from aigcrec.ranking.data import movielens_dataset, warm_split

    data = movielens_dataset(dataset_dir("movielens-100k"))
    assert len(data.frame) == 100000
    assert 0.5 < data.frame["label"].mean() < 0.6  # rating >= 4
    assert {f.name for f in data.tabular} == {"user_id", "age", "gender", "occupation", "zip1", "item_id",
                                               "release_year", "genre1", "genre2"}
    rows = warm_split(data.frame)
    assert len(rows["train"]) + len(rows["val"]) + len(rows["test"]) == 100000


def test_benchmark_runs_are_reused_only_for_the_same_data():
    from aigcrec.ranking.benchmark import _run_key
    from aigcrec.ranking.config import RankingConfig
    from aigcrec.ranking.data import RankingData

    def data(tags: str, vec: float) -> RankingData:
        frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "label": [1, 0],
                              "timestamp": [1.0, 2.0], "tags": [["cat"], [tags]]})
        return RankingData("world", frame, [], {"e_tsem": (["i1", "i2"], np.full((2, 3), vec, np.float32))})

    cfg = RankingConfig()
    key = _run_key(data("dog", 0.5), cfg)
    assert key == _run_key(data("dog", 0.5), cfg)
    # same size, other content (a regenerated world): its runs are not reused
    assert key != _run_key(data("robot", 0.5), cfg) and key != _run_key(data("dog", 0.25), cfg)
