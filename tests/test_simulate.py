"""``aigcrec simulate`` and the world's true click model it uses (tiny world)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

from aigcrec.world import load_world
from aigcrec.world.truth import SessionState, TrueClickModel, session_states

ISSUE_KEYS = {"ctr_at_k_mean", "ctr_at_k_ci95", "bookmarks_per_session_mean", "utility_mean",
              "ceiling_share_mean", "new_item_exposure_mean", "coverage_mean", "diversity_mean"}


@pytest.fixture(scope="module")
def world(tiny_world):
    return load_world(tiny_world, check_files=False)


def test_truth_gives_the_worlds_recorded_click_probabilities(world):
    """logit(recorded p) - z is each impression's own noise: centred, with the world's noise_sd."""
    model = TrueClickModel.from_world(world)
    states = session_states(world)
    inter = world.interactions
    z = np.array([model.logits(u, states[s], model.rows([i]))[0]
                  for u, s, i in zip(inter["user_id"], inter["session_id"], inter["item_id"])])
    p = pd.read_csv(world.root / "impressions_truth.csv")["p_click"].to_numpy().clip(1e-5, 1 - 1e-5)
    eps = np.log(p / (1 - p)) - z
    sd = world.truth["knobs"]["click"]["noise_sd"]
    assert len(eps) > 1000
    assert abs(eps.mean()) < 0.05
    assert 0.8 * sd < eps.std() < 1.2 * sd
    # and the expected probability is sigmoid(z) smoothed by that noise: between sigmoid(z) and 1/2
    q = model.expected(z)
    sig = 1 / (1 + np.exp(-z))
    assert np.all(np.abs(q - 0.5) <= np.abs(sig - 0.5) + 1e-12)


def test_truth_terms_move_the_logit_the_documented_way(world):
    model = TrueClickModel.from_world(world)
    user = world.users["user_id"].iloc[0]
    t = world.truth["users"][user]
    relax = model.logits(user, SessionState("sadness", "relax"))
    explore = model.logits(user, SessionState("sadness", "explore"))
    mood = world.truth["mood_table"]["sadness"]
    palettes = world.items["palette"].to_numpy()
    pop = np.array([world.truth["item_popularity"][i] for i in world.items["item_id"]])
    knobs = world.truth["knobs"]["click"]
    expected = (knobs["mood_scale"] * t["w_mood"] * (np.array([mood["relax"][c] for c in palettes])
                                                     - np.array([mood["explore"][c] for c in palettes]))
                + knobs["popularity_scale"] * t["popularity_bias"] * pop
                * (world.truth["intent_popularity"]["relax"] - world.truth["intent_popularity"]["explore"]))
    np.testing.assert_allclose(relax - explore, expected, atol=1e-9)
    style = world.items["style"].iloc[0]
    plain = model.logits(user, SessionState("neutral", "find_specific"))
    target = model.logits(user, SessionState("neutral", "find_specific", f"style:{style}"))
    bonus = world.truth["find_specific_bonus"]
    np.testing.assert_allclose(target - plain, bonus * (world.items["style"].to_numpy() == style))
    with pytest.raises(ValueError, match="target"):
        SessionState("joy", "share", "palette:pastel_calm")


def test_the_state_prior_is_the_worlds_and_the_blind_probabilities_average_over_it(world):
    model = TrueClickModel.from_world(world)
    user = world.users["user_id"].iloc[3]
    prior = model.state_prior(user)
    assert len(prior) == 35 and sum(w for _, w in prior) == pytest.approx(1.0)
    # sadness shifts intents towards relax (EMOTION_INTENT): P(relax | sadness) > P(relax | joy)
    p = {(s.emotion, s.intent): w for s, w in prior}
    cond = {e: p[(e, "relax")] / sum(w for (e2, _), w in p.items() if e2 == e) for e in ("sadness", "joy")}
    assert cond["sadness"] > cond["joy"]
    rows = np.arange(10)
    blind = model.blind_probabilities(user, rows)
    manual = sum(w * model.probabilities(user, s, rows) for s, w in prior)
    np.testing.assert_allclose(blind, manual)
    # the best slate knowing the state is at least as good, in that state, as the best blind one
    truth = session_states(world)
    sid = world.sessions[world.sessions["user_id"] == user]["session_id"].iloc[0]
    pk = model.probabilities(user, truth[sid])
    blind_all = model.blind_probabilities(user)
    assert np.sort(pk)[-5:].sum() >= pk[np.argsort(-blind_all)[:5]].sum()


def test_simulate_end_to_end_through_http(real_paths, tmp_path):
    """Two policies, a handful of sessions, through the real service started by the command."""
    from typer.testing import CliRunner

    from aigcrec.cli.main import app
    from aigcrec.service.artifacts import ArtifactsManifest

    p = real_paths
    models = tmp_path / "models"
    ArtifactsManifest(catalog_dir=str(p.catalog_dir), layout="world", feature_store=str(p.feature_store),
                      ranker_dir=str(p.ranker_dir), mmei_dir=str(p.mmei_dir), content_dir=str(p.content_dir)
                      ).save(models)
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(yaml.safe_dump({"simulate": {"new_item_share": 0.1, "new_item_batches": 3,
                                                "keep_databases": True}}), encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", "--world", str(p.catalog_dir), "--models", str(models),
                                      "--policies", "affect_mmei,popularity", "--sessions", "6",
                                      "--seeds", "1",
                                      "--k", "5", "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "simulate.json").read_text())
    assert set(doc) == {"k", "seeds", "policies"} and doc["k"] == 5 and doc["seeds"] == [0]
    assert set(doc["policies"]) == {"affect_mmei", "popularity"}
    assert all(set(row) == ISSUE_KEYS for row in doc["policies"].values())
    world = load_world(p.catalog_dir, check_files=False)
    texts = world.sessions["text"].tolist()
    for name in ("affect_mmei", "popularity"):
        rec = pd.read_csv(out / "runs" / f"{name}-s0.csv", keep_default_na=False)
        assert len(rec) == 6 and (rec["shown"] == 5).all()
        assert (rec["ceiling_utility"] >= rec["utility"] - 1e-9).all()
        assert (rec["read_emotion"] != "").all() == (name == "affect_mmei")  # signals reached MMEI
        db = out / "runs" / f"{name}-s0" / "service.sqlite"
        with sqlite3.connect(db) as con:
            n_events = con.execute("SELECT COUNT(*) FROM events WHERE session_id LIKE 'sim-%'").fetchone()[0]
            posted = con.execute("SELECT COUNT(*) FROM items WHERE origin = 'api'").fetchone()[0]
        assert n_events == rec["shown"].sum() + rec["clicks"].sum()   # every impression and bookmark logged
        assert posted == 12                                            # the held-out tenth, in three batches
        raw = db.read_bytes()
        assert not any(t.encode() in raw for t in texts if len(t) > 12)  # no utterance reached the database
    assert b"<img" in (out / "simulate.html").read_bytes()
    assert "| affect_mmei |" in (out / "simulate.md").read_text()


def test_demo_stage_reports_the_simulation(real_paths, tmp_path):
    from aigcrec.config import AppConfig
    from aigcrec.demo import DemoContext
    from aigcrec.report import Report
    from aigcrec.demo.simulate import run

    cfg = AppConfig()
    cfg.simulate.policies = ["affect_blind", "ceiling"]
    cfg.simulate.demo_sessions = 3
    p = real_paths
    ctx = DemoContext(config=cfg, run_dir=tmp_path / "demo", cache_dir=tmp_path / "cache", report=Report("t"))
    ctx.run_dir.mkdir()
    ctx.artifacts.update(world_dir=str(p.catalog_dir), feature_store=str(p.feature_store),
                         ranker_dir=str(p.ranker_dir), content_dir=str(p.content_dir),
                         mmei_dir=str(p.mmei_dir))
    run(ctx)
    assert set(ctx.metrics["simulate"]) >= {"affect_blind_ctr_at_10", "ceiling_ctr_at_10",
                                           "ctr_ratio_ceiling_over_blind"}
    doc = json.loads((ctx.run_dir / "simulate" / "simulate.json").read_text())
    assert doc["policies"]["ceiling"]["ceiling_share_mean"] == 1.0
    assert doc["policies"]["affect_blind"]["ceiling_share_mean"] <= 1.0
    html = ctx.report.to_html()
    assert "Online simulation through the HTTP service" in html and "data:image/png;base64" in html


def test_a_stated_state_merges_into_the_real_mmei_prior(real_paths):
    """affect_oracle without signals: the true state over MMEI's prior, in the ranker's context format."""
    from aigcrec.affect.predictor import AffectPredictor
    from aigcrec.service.stated import STATED, stated_state

    predictor = AffectPredictor.load(real_paths.mmei_dir)
    prior = predictor.prior()
    assert prior.modalities_used == [] and sum(prior.emotion_probs.values()) == pytest.approx(1.0, abs=1e-5)
    state = stated_state(prior, "sadness", "relax")
    assert state.emotion == "sadness" and state.intent_probs["relax"] == 1.0 and state.confidence == 1.0
    assert state.modalities_used == [STATED] and predictor.prior().modalities_used == []  # the prior is a copy
    np.testing.assert_array_equal(state.embedding, prior.embedding)
    vec = state.as_vector()
    assert vec[list(prior.emotion_probs).index("sadness")] == 1.0 and len(vec) == len(prior.as_vector())
