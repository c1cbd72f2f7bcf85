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
    assert result["recipe"] is None  # the world keeps the class defaults: no real-data recipe
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
    from aigcrec.demo.affect import run

    cfg = AppConfig(**TINY)
    ctx = DemoContext(config=cfg, run_dir=run_dir / "demo", cache_dir=run_dir / "cache", report=Report("t"))
    ctx.run_dir.mkdir()
    ctx.artifacts["world_dir"] = str(tiny_world)
    run(ctx)
    frame = pd.read_parquet(ctx.artifacts["affect_context"])
    assert len(frame) == 300 and frame.index.name == "session_id"
    assert (Path(ctx.artifacts["mmei_dir"]) / "config.json").is_file()
    headline = {r["metric"] for r in ctx.summary if r["stage"] == "affect"}
    assert {"emotion_macro_f1", "emotion_nll", "emotion_ece", "intent_macro_f1"} <= headline
    html = ctx.report.to_html()
    assert "text+voice+face" in html and "confusion matrix" in html and "data:image/png;base64" in html
    rows = ctx.metrics["affect"]["subset_macro_f1"]
    assert [r["model"] for r in rows][:1] == ["mmei"] and len(rows[0]) == 8
    # a second run reuses the cached model
    mtime = (Path(ctx.artifacts["mmei_dir"]) / "weights.pt").stat().st_mtime
    table = Path(ctx.artifacts["mmei_dir"]) / "subset_macro_f1.json"
    table_mtime = table.stat().st_mtime
    run(ctx)
    assert (Path(ctx.artifacts["mmei_dir"]) / "weights.pt").stat().st_mtime == mtime
    # and the subset table beside it: the baselines are not retrained, the figures are the same
    assert table.stat().st_mtime == table_mtime and ctx.metrics["affect"]["subset_macro_f1"] == rows


def _separable(n: int, seed: int):
    """Voice carries the emotion, text is noise, face is present in half the rows and carries it weakly."""
    from aigcrec.affect.data import AffectData
    from aigcrec.affect.encoders.base import Encoded

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    proto = np.random.default_rng(7).normal(size=(7, 6)) * 3
    feats = {}
    for m, (signal, p_present) in {"text": (0.0, 1.0), "voice": (1.0, 1.0), "face": (0.3, 0.5)}.items():
        x = (signal * proto[y] + rng.normal(size=(n, 6))).astype(np.float32)
        feats[m] = Encoded(x[:, None, :], np.ones((n, 1), bool), x, rng.random(n) < p_present)
    return AffectData(feats, y, (y % 3).astype(np.int64))


def test_mmei_evidence_is_a_robust_product_of_experts():
    import torch

    from aigcrec.affect.networks import MMEINetwork

    net = MMEINetwork({"text": (4, 4), "voice": (3, 3)}, n_intents=2, width=8, heads=2)
    u = torch.randn(5, 2, 7)
    given = torch.tensor([[True, False]] * 5)
    # eps -> 0, T = 1, one modality present: the evidence is that expert's log-probabilities
    e = net.evidence(u, given, torch.zeros(2), torch.full((2,), -40.0))
    torch.testing.assert_close(e, torch.log_softmax(u[:, 0], -1))
    # two modalities: log-probabilities add up (uniform reference: minus log 1/7 once)
    both = torch.ones(5, 2, dtype=torch.bool)
    e2 = net.evidence(u, both, torch.zeros(2), torch.full((2,), -40.0))
    expected = torch.log_softmax(u, -1).sum(1) + torch.log(torch.tensor(7.0))
    torch.testing.assert_close(e2, expected)
    # eps = 1: the modality says nothing, the evidence is the reference distribution
    flat = net.evidence(u, both, torch.zeros(2), torch.full((2,), 40.0))
    torch.testing.assert_close(flat.softmax(-1), torch.full((5, 7), 1 / 7))
    # the residual head starts at zero: a fresh network outputs exactly the experts' product
    batch = {m: {"seq": torch.randn(5, 2, d), "mask": torch.ones(5, 2, dtype=torch.bool), "pooled": torch.randn(5, d),
                 "present": torch.tensor([True, True, False, True, True])} for m, d in (("text", 4), ("voice", 3))}
    net.eval()
    out = net(batch)
    given = torch.stack([batch[m]["present"] for m in net.modalities], 1)
    torch.testing.assert_close(out.emotion, net.evidence(out.unimodal, given))


def test_mmei_pretrains_experts_then_freezes_them(monkeypatch):
    import torch

    from aigcrec.affect import model as model_module
    from aigcrec.affect.config import MMEIConfig
    from aigcrec.affect.reports import classification_report
    from aigcrec.affect.model import MMEIModel
    from aigcrec.affect.trainer import AffectTrainer

    snapshots = {}

    class Spy(AffectTrainer):
        def _calibrate_experts(self, dev):
            super()._calibrate_experts(dev)
            net = self.model.net
            expert = {id(p) for m in self.model.modalities for p in net.expert_parameters(m)}
            snapshots["experts"] = {k: v.detach().clone() for k, v in net.named_parameters() if id(v) in expert}
            snapshots["text_seq"] = net.proj["text"].seq.weight.detach().clone()

    monkeypatch.setattr(model_module, "AffectTrainer", Spy)
    train, dev, test = _separable(500, 0), _separable(150, 1), _separable(300, 2)
    dims = {m: (6, 6) for m in ("text", "voice", "face")}
    cfg = MMEIConfig(width=16, heads=2, epochs=8, batch_size=32, lr=5e-3)
    model = MMEIModel(dims, ["a", "b", "c"], cfg).fit(train, dev, seed=0)
    final = dict(model.net.named_parameters())
    assert len(snapshots["experts"]) >= 3 * 6  # per modality: pooled W, b, type embedding, LayerNorm, MLPs
    assert all(torch.equal(v, final[k]) for k, v in snapshots["experts"].items())
    assert not torch.equal(snapshots["text_seq"], final["proj.text.seq.weight"])  # tokens still learn (cross-modal)
    assert model.stages["experts"]["epochs"] >= 1 and 0.0 <= model.stages["residual_gate"]["gate"] <= 1.0
    assert model.history and all("train_loss" in h for h in model.history)  # joint-training epochs
    # the noise-only text expert is calibrated to say little, the voice expert to be trusted
    eps = torch.sigmoid(model.net.expert_mix)
    t = model.net.expert_log_t.exp()
    f1 = {s: classification_report(model.predict(test.with_modalities(s)).emotion_probs, test.emotion)["macro_f1"]
          for s in (("voice",), ("text", "voice"), ("text", "voice", "face"), ("text",))}
    assert f1[("voice",)] > 0.9 and f1[("text",)] < 0.4
    assert f1[("text", "voice")] >= f1[("voice",)] - 0.03  # adding a noise modality does not hurt
    assert f1[("text", "voice", "face")] >= f1[("voice",)] - 0.03
    assert eps[0] > eps[1] or t[0] > t[1]


def test_sessions_encoded_from_detected_crops_equal_encoding_the_photos(tiny_world, tmp_path):
    """The demo detects each face once (for the face network's training and for encoding): the features from
    the memoised crops are those of the encoder detecting the photos itself, unreadable photos still reported."""
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.sessions import encode_sessions
    from aigcrec.affect.tasks import world_face_crops
    from aigcrec.world import load_world

    sessions = load_world(tiny_world).sessions.head(40).copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    sessions.loc[sessions.index[3], "face_path"] = str(bad)
    cfg = AffectConfig()
    direct, direct_problems = encode_sessions(sessions, tiny_world, cfg)
    crops = world_face_crops(sessions, tiny_world, cfg)
    assert world_face_crops(sessions, tiny_world, cfg) is crops  # memoised: detected once
    reused, reused_problems = encode_sessions(sessions, tiny_world, cfg, face_crops=crops)
    a, b = direct.features["face"], reused.features["face"]
    assert a.present.sum() > 10 and not a.present[3]
    np.testing.assert_array_equal(a.present, b.present)
    np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-6)
    np.testing.assert_allclose(a.seq, b.seq, atol=1e-6)
    pd.testing.assert_frame_equal(direct_problems, reused_problems)
    assert direct_problems["session_id"].tolist() == [str(sessions["session_id"].iloc[3])]


def test_fusion_trains_the_face_network_on_the_world_train_faces(tmp_path, tiny_world):
    from aigcrec.affect.config import AffectConfig
    from aigcrec.affect.tasks import fusion_data, load_world_sessions, world_face_splits

    cfg = AffectConfig(encoders={"face_train": {"enabled": True, "width": 4, "epochs": 1, "batch_size": 16,
                                                "bf16": False, "threads": 1}})
    sessions = load_world_sessions(tiny_world)
    splits = world_face_splits(sessions, tiny_world, cfg)
    for name, (x, y) in splits.items():
        assert x.shape == (len(y), 48, 48) and x.dtype == np.uint8, name
        assert len(y) <= int((sessions["split"] == name).sum()) and set(y.tolist()) <= set(range(7))
    assert len(splits["train"][1]) > len(splits["test"][1]) > 0

    data, split, _ = fusion_data(tiny_world, cfg, tmp_path)
    ckpt = next(tmp_path.glob("world-face-net-trained-*.pt"))
    meta = json.loads(ckpt.with_suffix(".json").read_text())
    assert meta["faces"] == {name: len(y) for name, (_, y) in splits.items()} and len(meta["history"]) == 1
    face = data.features["face"]
    assert face.pooled.shape[1] == 256 + 7
    # the trained network's class probabilities (face-net: softmax) close every present face's pooled vector
    np.testing.assert_allclose(face.pooled[face.present, -7:].sum(1), 1.0, rtol=1e-4)
    assert int(face.present[split == "train"].sum()) == len(splits["train"][1])
    # the config a model records: the trained network as the face encoder, which rebuilds the same features
    from aigcrec.affect.predictor import build_encoders
    from aigcrec.affect.sessions import session_inputs
    from aigcrec.affect.tasks import with_world_face_net

    resolved = with_world_face_net(tiny_world, cfg, tmp_path)
    assert resolved.encoders.face == f"face-net:{ckpt.resolve()}" and not resolved.encoders.face_train.enabled
    assert with_world_face_net(tiny_world, resolved, tmp_path) is resolved
    row = int(np.flatnonzero(face.present)[0])
    photo = session_inputs(sessions.iloc[[row]], tiny_world)["face"]
    again = build_encoders(resolved.encoders, ["face"])["face"].encode(photo)
    np.testing.assert_allclose(again.pooled[0], face.pooled[row], atol=1e-5)
    # without a cache folder there is nowhere to keep the weights: a clear error, not a silent untrained net
    with pytest.raises(ValueError, match="cache folder"):
        fusion_data(tiny_world, cfg, None)


def test_train_mmei_with_world_face_training_saves_a_model_that_reads_faces_the_same_way(tmp_path, tiny_world):
    from aigcrec.affect.model import AffectModel
    from aigcrec.affect.predictor import AffectPredictor
    from aigcrec.cli.main import app
    from aigcrec.world import load_world

    cfg = {"affect": {**TINY["affect"], "encoders": {"face_train": {
        "enabled": True, "width": 4, "epochs": 1, "batch_size": 16, "bf16": False, "threads": 1}}}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["train", "mmei", "--world", str(tiny_world), "--config", str(tmp_path / "cfg.yaml"),
                                   "--out", str(tmp_path / "train"), "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    model = AffectModel.load(tmp_path / "train" / "mmei")
    face = model.encoders["face"]
    assert face.startswith("face-net:") and Path(face[len("face-net:"):]).is_file()
    assert not model.encoders["face_train"]["enabled"]
    from aigcrec.affect.encoders.face import detect_face
    from aigcrec.affect.inputs import decode_face

    photos = [tiny_world / p for p in load_world(tiny_world).sessions["face_path"]]
    photo = next(p for p in photos if detect_face(decode_face(p)) is not None)
    state = AffectPredictor(model).predict(face=photo)
    assert state.modalities_used == ["face"]
    assert sum(state.emotion_probs.values()) == pytest.approx(1.0, abs=1e-4)


def test_demo_report_names_the_face_encoder_and_its_training_record(tmp_path):
    from aigcrec.demo.affect import _face_encoder_text

    assert _face_encoder_text("fer-cnn") == "Face encoder: fer-cnn."
    assert _face_encoder_text("hf:trpakov/vit-face-expression") == "Face encoder: hf:trpakov/vit-face-expression."
    weights = tmp_path / "world-face-net-trained-abc.pt"
    weights.with_suffix(".json").write_text(json.dumps(
        {"best_dev_accuracy": 0.8474, "best_epoch": 26, "test_accuracy": 0.8514, "faces": {"train": 2585, "test": 592}}))
    text = _face_encoder_text(f"face-net:{weights}")
    assert "2585 faces" in text and "0.847 at epoch 26" in text and "0.851 on 592 test faces" in text
