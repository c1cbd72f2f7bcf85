"""The affect stage on the tiny world: CLI benchmark (fusion) and training, affect context for the ranker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

TINY = {"affect": {"mmei": {"width": 16, "heads": 2, "epochs": 2, "batch_size": 64}}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_world):
    """One fusion benchmark on the tiny world (1 seed, 2 epochs); its feature cache is reused below."""
    from aigcrec.cli.main import app

    d = tmp_path_factory.mktemp("affect_world")
    (d / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    res = CliRunner().invoke(app, ["benchmark", "affect", "--task", "fusion", "--data-dir", str(tiny_world),
                                   "--seeds", "1", "--config", str(d / "tiny.yaml"), "--out", str(d / "bench"),
                                   "--cache-dir", str(d / "cache" / "affect")])
    assert res.exit_code == 0, res.output
    return d


def test_fusion_benchmark_writes_every_model_and_subset(run_dir):
    from aigcrec.affect.benchmark import SUBSETS, subset_name

    result = json.loads((run_dir / "bench" / "affect.json").read_text())
    assert result["task"] == "fusion" and result["seeds"] == [0]
    expected = {"mmei", "text-only", "voice-only", "face-only", "late-fusion", "early-fusion"}
    assert set(result["models"]) == expected
    for name, metrics in result["models"].items():
        for key in ("macro_f1_mean", "macro_f1_std", "weighted_f1_mean", "accuracy_mean", "nll_mean", "ece_mean"):
            assert np.isfinite(metrics[key]), (name, key)
        assert set(result["subsets"][name]) == {subset_name(s) for s in SUBSETS}
    assert set(result["intent"]) == expected
    assert "| mmei |" in (run_dir / "bench" / "affect.md").read_text()
    assert result["counts"]["test"] > 0


def test_train_mmei_cli_and_affect_context(run_dir, tiny_world):
    from aigcrec.affect.predictor import AffectPredictor
    from aigcrec.affect.sessions import predict_sessions
    from aigcrec.cli.main import app
    from aigcrec.world import INTENTS, load_world

    res = CliRunner().invoke(app, ["train", "mmei", "--world", str(tiny_world), "--config",
                                   str(run_dir / "tiny.yaml"), "--out", str(run_dir / "train"),
                                   "--cache-dir", str(run_dir / "cache" / "affect")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((run_dir / "train" / "mmei_metrics.json").read_text())
    assert 0 <= metrics["test"]["emotion"]["macro_f1"] <= 1
    predictor = AffectPredictor.load(run_dir / "train" / "mmei", warm=False)
    world = load_world(tiny_world)
    sessions = world.sessions.head(6)
    frame = predict_sessions(sessions, predictor)
    assert list(frame.index) == sessions["session_id"].astype(str).tolist()
    assert frame.index.name == "session_id"
    assert all(frame.dtypes == np.float32)
    p = frame[[f"emotion_p_{e}" for e in ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")]]
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-4)
    assert [c for c in frame if c.startswith("intent_p_")] == [f"intent_p_{i}" for i in INTENTS]
    # one request through the predictor equals the batch row
    row = sessions.iloc[0]
    state = predictor.predict(text=row["text"], voice=row["voice_path"], face=row["face_path"])
    assert state.as_vector()[:7] == pytest.approx(p.iloc[0].to_numpy(), abs=1e-4)


def test_benchmark_cli_rejects_bad_arguments(tmp_path):
    from aigcrec.cli.main import app

    res = CliRunner().invoke(app, ["benchmark", "affect", "--task", "sarcasm", "--data-dir", str(tmp_path)])
    assert res.exit_code != 0 and "expected one of" in res.output
    res = CliRunner().invoke(app, ["train", "mmei", "--world", str(tmp_path / "nope")])
    assert res.exit_code != 0 and "expected a world folder" in res.output


def test_problem_inputs_are_reported_not_fatal(tiny_world, tmp_path):
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.sessions import encode_sessions
    from aigcrec.world import load_world

    sessions = load_world(tiny_world).sessions.head(4).copy()
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    sessions.loc[sessions.index[1], "voice_path"] = str(bad)
    sessions.loc[sessions.index[2], "text"] = np.nan
    data, problems = encode_sessions(sessions, tiny_world, AffectConfig())
    assert len(data) == 4
    assert data.features["voice"].present.tolist()[1] is False or not data.features["voice"].present[1]
    assert not data.features["text"].present[2]
    assert problems["session_id"].tolist() == [str(sessions["session_id"].iloc[1])]
    assert isinstance(problems, pd.DataFrame)


def test_demo_stage(run_dir, tiny_world):
    from aigcrec.config import AppConfig
    from aigcrec.demo import DemoContext
    from aigcrec.report import Report
    from aigcrec.affect.demo import run

    cfg = AppConfig(**TINY)
    ctx = DemoContext(config=cfg, run_dir=run_dir / "demo", cache_dir=run_dir / "cache", report=Report("t"))
    ctx.run_dir.mkdir()
    ctx.artifacts["world_dir"] = str(tiny_world)
    run(ctx)
    frame = pd.read_parquet(ctx.artifacts["affect_context"])
    assert len(frame) == 300 and frame.index.name == "session_id"
    assert (Path(ctx.artifacts["mmei_dir"]) / "model.json").is_file()
    headline = {r["metric"] for r in ctx.summary if r["stage"] == "affect"}
    assert {"emotion_macro_f1", "emotion_nll", "emotion_ece", "intent_macro_f1"} <= headline
    html = ctx.report.to_html()
    assert "text+voice+face" in html and "confusion matrix" in html and "data:image/png;base64" in html
    rows = ctx.metrics["affect"]["subset_macro_f1"]
    assert [r["model"] for r in rows][:1] == ["mmei"] and len(rows[0]) == 8
    # a second run reuses the cached model
    mtime = (Path(ctx.artifacts["mmei_dir"]) / "weights.pt").stat().st_mtime
    run(ctx)
    assert (Path(ctx.artifacts["mmei_dir"]) / "weights.pt").stat().st_mtime == mtime
