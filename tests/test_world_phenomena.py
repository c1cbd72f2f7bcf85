"""Cross-modal affect phenomena of the world (sarcasm, masking, arousal wording; docs/world.md): off by default
with the files of a world made before them, each at about its prevalence and changing the displays as documented."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aigcrec.world import WorldConfig, generate_world
from aigcrec.world.config import PHENOMENA, PHENOMENON_MAX, AffectKnobs
from aigcrec.world.generate import config_digest
from aigcrec.world.signals import EMOTION_PHRASES, EXCLAMATIONS, face_image, user_looks, voice_clip
from aigcrec.world.simulate import MASKING_SMILE, make_catalog, make_users, simulate

TABLES = ("items.csv", "users.csv", "interactions.csv", "affect/utterances.csv", "affect/signal_truth.csv",
          "text_pairs.csv", "creators.csv", "series.csv", "impressions_truth.csv", "truth.json", "world.json")
# sha256 over the tables of the tiny world, seed 0, as generated before the phenomena existed (commit 7946741)
TINY_SEED0_TABLES = "3721d164dc17d3e08d83eda2e12cc77512d6faccdbc57a6ffbe7ad201f779682"
DOCUMENTED = {"sarcasm": 0.05, "masking": 0.10, "arousal_wording": 0.05}   # benchmarks/affect_world_crossmodal.yaml


def _tables_digest(root: Path) -> str:
    h = hashlib.sha256()
    for rel in TABLES:
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()


def _config(**affect) -> WorldConfig:
    return WorldConfig.model_validate({"affect": {"typo_rate": 0.0, **affect}})


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny world (seed 0, no typos) without and with the documented phenomena."""
    root = tmp_path_factory.mktemp("phenomena")
    plain = generate_world(root / "plain", size="tiny", seed=0, config=_config())
    crossmodal = generate_world(root / "crossmodal", size="tiny", seed=0, config=_config(**DOCUMENTED))
    return plain, crossmodal


def _says(text: str, phrases) -> bool:
    """Whether ``text`` holds one of ``phrases``, ignoring case and the intensifiers and hedges added to them."""
    def norm(t: str) -> str:
        t = f" {t.lower()} "
        for w in (" so ", " really ", " super ", " very ", " a bit ", " kind of "):
            t = t.replace(w, " ")
        return t.strip(" !")
    return any(norm(p) in norm(text) for p in phrases)


def _sessions(root: Path) -> pd.DataFrame:
    u = pd.read_csv(root / "affect" / "utterances.csv", keep_default_na=False)
    return u.merge(pd.read_csv(root / "affect" / "signal_truth.csv", keep_default_na=False), on="session_id")


def test_without_phenomena_the_world_is_byte_identical_to_before(tiny_world: Path):
    assert _tables_digest(tiny_world) == TINY_SEED0_TABLES
    assert "phenomenon" not in pd.read_csv(tiny_world / "affect" / "signal_truth.csv").columns
    assert "sarcasm" not in json.loads((tiny_world / "truth.json").read_text())["knobs"]["affect"]
    # the reuse key changes with the phenomena (a cached world is regenerated), not with them at 0
    assert config_digest(WorldConfig(), 0) == config_digest(_config(typo_rate=0.04, sarcasm=0.0), 0)
    assert config_digest(WorldConfig(), 0) != config_digest(_config(typo_rate=0.04, sarcasm=0.05), 0)


def test_phenomena_change_only_the_affect_signals_of_their_sessions(pair):
    plain, crossmodal = pair
    for rel in ("items.csv", "users.csv", "interactions.csv", "impressions_truth.csv", "text_pairs.csv"):
        assert (plain / rel).read_bytes() == (crossmodal / rel).read_bytes(), rel
    a, b = _sessions(plain), _sessions(crossmodal)
    assert "phenomenon" not in a and "phenomenon" in b
    assert set(b["phenomenon"]) == {"none", *PHENOMENA}
    pd.testing.assert_frame_equal(a[["session_id", "user_id", "timestamp", "emotion", "intent", "split", "target",
                                     "intensity"]], b[["session_id", "user_id", "timestamp", "emotion", "intent",
                                                       "split", "target", "intensity"]])
    none = (b["phenomenon"] == "none").to_numpy()
    pd.testing.assert_frame_equal(a[none].reset_index(drop=True), b[none].drop(columns="phenomenon")
                                  .reset_index(drop=True))
    images = sorted((plain / "images").iterdir())
    assert all(p.read_bytes() == (crossmodal / "images" / p.name).read_bytes() for p in images)
    for r in b.itertuples():
        same_face = (plain / r.face).read_bytes() == (crossmodal / r.face).read_bytes()
        same_voice = (plain / r.voice).read_bytes() == (crossmodal / r.voice).read_bytes()
        if not (r.phenomenon == "sarcasm" and r.face_strength < 0.2):   # a faint smirk may not move a pixel
            assert same_face == (r.phenomenon in ("none", "arousal_wording")), (r.session_id, r.phenomenon)
        assert same_voice == (r.phenomenon != "sarcasm"), (r.session_id, r.phenomenon)


def test_each_phenomenon_changes_the_displays_as_documented(pair):
    plain, crossmodal = pair
    a, b = _sessions(plain), _sessions(crossmodal)
    for name, emotions in PHENOMENA.items():
        rows = (b["phenomenon"] == name).to_numpy()
        assert rows.sum() >= 5, name
        assert set(b.loc[rows, "emotion"]) <= set(emotions), name
        was, now = a[rows], b[rows]
        if name == "sarcasm":      # joy words; face and voice keep what they showed (with the cues)
            assert (now["text_shows"] == "joy").all()
            assert all(_says(t, EMOTION_PHRASES["joy"]) for t in now["text"])
            for col in ("face_shows", "face_strength", "voice_shows", "voice_strength"):
                assert (was[col].to_numpy() == now[col].to_numpy()).all(), col
        elif name == "masking":    # a polite smile; text and voice unchanged
            assert (now["face_shows"] == "joy").all() and (now["face_strength"] == MASKING_SMILE).all()
            for col in ("text", "text_shows", "voice_shows", "voice_strength"):
                assert (was[col].to_numpy() == now[col].to_numpy()).all(), col
        else:                      # an exclamation shared by joy, surprise and fear; face and voice unchanged
            assert (now["text_shows"] == "exclaim").all()
            assert all(_says(t, EXCLAMATIONS) for t in now["text"])
            assert not any(_says(t, EMOTION_PHRASES[e]) for e in emotions for t in now["text"])
            for col in ("face_shows", "face_strength", "voice_shows", "voice_strength"):
                assert (was[col].to_numpy() == now[col].to_numpy()).all(), col


def test_each_phenomenon_appears_at_about_its_prevalence():
    cfg = _config(**DOCUMENTED).model_copy(update={"size": "tiny", "n_sessions": 3000})
    preset = cfg.preset()
    cat = make_catalog(preset, 7, cfg.text)
    sessions = simulate(preset, cat, make_users(preset, cat, cfg, 7), cfg, 7).sessions
    rates = cfg.affect.phenomenon_rates()
    for name, prevalence in DOCUMENTED.items():
        got = (sessions["phenomenon"] == name).to_numpy()
        p = sessions["emotion"].map(lambda e: rates.get(e, {}).get(name, 0.0)).to_numpy()
        # the count given the sessions' emotions, within 4 standard deviations; the share near the prevalence
        assert abs(got.sum() - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum()), name
        assert abs(got.mean() - prevalence) < 0.4 * prevalence, (name, got.mean())
        assert set(sessions.loc[got, "emotion"]) <= set(PHENOMENA[name])


def test_the_cues_change_faces_and_voices_with_the_same_draws():
    looks = user_looks(np.random.default_rng(1))
    plain = np.asarray(face_image("anger", 0.8, looks, np.random.default_rng(2), 64))
    assert (plain == np.asarray(face_image("anger", 0.8, looks, np.random.default_rng(2), 64, cue=""))).all()
    assert (plain != np.asarray(face_image("anger", 0.8, looks, np.random.default_rng(2), 64, cue="smirk"))).any()
    joy = np.asarray(face_image("joy", MASKING_SMILE, looks, np.random.default_rng(2), 64))
    assert (joy != np.asarray(face_image("joy", MASKING_SMILE, looks, np.random.default_rng(2), 64, cue="polite"))
            ).any()   # the eyes do not smile
    v = voice_clip("anger", 0.8, 150.0, np.random.default_rng(3))
    s = voice_clip("anger", 0.8, 150.0, np.random.default_rng(3), cue="sarcastic")
    assert len(s) > 1.1 * len(v)   # slower: the same syllables take longer
    with pytest.raises(ValueError, match="unknown face cue"):
        face_image("anger", 0.8, looks, np.random.default_rng(2), 64, cue="wink")


def test_prevalences_are_bounded_by_the_sessions_they_apply_to():
    assert PHENOMENON_MAX["sarcasm"] == pytest.approx(0.17)
    with pytest.raises(ValidationError, match="less than or equal"):
        AffectKnobs(sarcasm=0.2)
    with pytest.raises(ValidationError, match="anger sessions add up to more than all of them"):
        AffectKnobs(sarcasm=0.17, masking=0.2)
    assert AffectKnobs(**DOCUMENTED).phenomena() == DOCUMENTED
