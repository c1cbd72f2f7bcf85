"""The embedded world: schema and loader, determinism, broken copies, and the oracle gaps on the tiny world."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aigcrec.data.errors import DataError
from aigcrec.data.schemas import EMOTIONS as SCHEMA_EMOTIONS
from aigcrec.world import EMOTIONS, INTENTS, World, WorldConfig, generate_world, load_world

TABLES = ("items.csv", "users.csv", "interactions.csv", "affect/utterances.csv", "affect/signal_truth.csv",
          "text_pairs.csv", "creators.csv", "series.csv", "impressions_truth.csv", "truth.json", "world.json")


@pytest.fixture(scope="module")
def world(tiny_world: Path) -> World:
    return load_world(tiny_world)


def test_labels_match_the_shared_schema():
    assert EMOTIONS == SCHEMA_EMOTIONS
    assert INTENTS == ("explore", "relax", "get_inspired", "find_specific", "share")


def test_tiny_world_has_the_promised_tables(world: World):
    assert len(world.items) == 120 and len(world.users) == 40 and len(world.sessions) == 300
    assert 1500 <= len(world.interactions) <= 2600
    for col in ("item_id", "title", "title_ja", "title_zh", "tags", "creator_id", "series_id", "image_path",
                "created_at", "subject", "style", "palette"):
        assert col in world.items.columns, col
    assert world.items["item_id"].str.fullmatch(r"i\d{6}").all()
    assert world.users["user_id"].str.fullmatch(r"u\d{4}").all()
    assert set(world.users["taste_type"]) <= {"style", "subject", "mixed", "mood"}
    langs = {t["lang"] for tags in world.items["tags"] for t in tags}
    assert langs == {"en", "ja", "zh"}
    assert list(world.sessions.columns) == ["session_id", "user_id", "timestamp", "emotion", "intent", "text",
                                            "face_path", "voice_path", "split"]
    assert set(world.sessions["split"]) == {"train", "dev", "test"}
    # splits are by user: no user in two splits
    assert (world.sessions.groupby("user_id")["split"].nunique() == 1).all()
    inter = world.interactions
    assert set(inter["label"]) == {0, 1} and inter["label"].dtype.kind == "i"
    assert (np.diff(inter["timestamp"].to_numpy()) >= 0).all()
    assert set(inter["session_id"]) <= set(world.sessions["session_id"])
    assert set(world.text_pairs["kind"]) == {"multilingual", "entity", "term"}
    assert {"ja-en", "zh-en", "en-en"} <= set(world.text_pairs["langs"])
    train, test = (world.text_pairs[world.text_pairs["split"] == s] for s in ("train", "test"))
    assert len(test) > 0 and not set(test["anchor"]) & set(train["anchor"])
    assert set(world.truth["users"]) == set(world.users["user_id"])


def test_uploaders_leave_descriptive_tags_and_titles_out_by_the_text_knobs():
    from aigcrec.world.config import TextKnobs
    from aigcrec.world.simulate import make_catalog
    from aigcrec.world.vocab import NAMES

    preset = WorldConfig(size="small").preset()
    full = make_catalog(preset, 3, TextKnobs(descriptive_tag_rate=1.0, untitled_rate=0.0)).items
    sparse = make_catalog(preset, 3, TextKnobs(descriptive_tag_rate=0.5, untitled_rate=0.4)).items
    # the knobs change only titles and tags: the catalog's other draws are on another random stream
    cols = ["item_id", "subject", "style", "palette", "creator_id", "series_id", "created_at", "character"]
    pd.testing.assert_frame_equal(full[cols], sparse[cols])

    def names(items: pd.DataFrame, role: str) -> pd.Series:
        return pd.Series([any(t["text"] in NAMES[label] for t in json.loads(tags))
                          for tags, label in zip(items["tags"], items[role])])
    for role in ("subject", "style", "palette"):
        assert names(full, role).all(), role
        assert 0.4 < names(sparse, role).mean() < 0.6, role
    assert not (full["title"] == "Untitled").any()
    assert 0.3 < (sparse["title"] == "Untitled").mean() < 0.5
    untitled = sparse["title"] == "Untitled"
    assert (sparse.loc[untitled, "title_ja"] == "無題").all() and (sparse.loc[untitled, "title_zh"] == "无题").all()
    # tags that say nothing about the picture's content stay
    assert all(any(t["text"] in NAMES["AI art"] for t in json.loads(tags)) for tags in sparse["tags"])


def test_media_files_are_what_the_encoders_expect(world: World):
    img = Image.open(world.items["image_path"].iloc[0])
    assert img.size == (128, 128) and img.mode == "RGB"
    face = Image.open(world.sessions["face_path"].iloc[0])
    assert face.size == (64, 64)
    with wave.open(world.sessions["voice_path"].iloc[0], "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert 0.5 < w.getnframes() / 16000 < 3.5


def test_same_seed_gives_identical_files_and_another_seed_differs(tiny_world: Path, tmp_path: Path):
    again = generate_world(tmp_path / "again", size="tiny", seed=0)
    for rel in TABLES:
        assert (again / rel).read_bytes() == (tiny_world / rel).read_bytes(), rel
    for rel in ("images/i000007.png", "affect/faces/x000011.png", "affect/voices/x000011.wav"):
        assert (again / rel).read_bytes() == (tiny_world / rel).read_bytes(), rel
    cfg = WorldConfig(n_items=20, n_users=6, n_sessions=20)
    other = generate_world(tmp_path / "other", size="tiny", seed=1, config=cfg)
    assert (other / "items.csv").read_bytes() != (tiny_world / "items.csv").read_bytes()


def _broken_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.png", "*.wav"))
    return dst


@pytest.mark.parametrize(("rel", "row", "col", "value", "expect"), [
    ("items.csv", 5, "style", "oil", "items.csv row 5, field 'style'"),
    ("items.csv", 3, "tags", "[not json", "items.csv row 3, field 'tags'"),
    ("interactions.csv", 12, "label", "2", "interactions.csv row 12, field 'label'"),
    ("interactions.csv", 7, "item_id", "i999999", "interactions.csv row 7, field 'item_id'"),
    ("affect/utterances.csv", 4, "emotion", "happy", "affect/utterances.csv row 4, field 'emotion'"),
])
def test_a_broken_copy_is_rejected_naming_file_row_and_field(tiny_world, tmp_path, rel, row, col, value, expect):
    root = _broken_copy(tiny_world, tmp_path / "broken")
    df = pd.read_csv(root / rel, dtype=str, keep_default_na=False)
    df.loc[row - 1, col] = value
    df.to_csv(root / rel, index=False)
    with pytest.raises(DataError) as err:
        load_world(root, check_files=False)
    assert expect in str(err.value)


def test_missing_files_are_named(tiny_world, tmp_path):
    root = _broken_copy(tiny_world, tmp_path / "broken")
    with pytest.raises(DataError, match=r"items.csv row 1, field 'image'"):
        load_world(root)                     # images were not copied
    (root / "users.csv").unlink()
    with pytest.raises(DataError, match="users.csv: file missing"):
        load_world(root, check_files=False)


def test_ground_truth_of_clicks_is_recoverable(world: World):
    from aigcrec.world.check import click_oracle

    c = click_oracle(world)
    assert 0.1 < c["bookmark_rate"] < 0.4
    assert c["auc_true_terms_lr"] >= 0.80
    assert c["auc_true_terms_lr"] <= c["auc_true_probability"] + 0.02
    assert c["auc_onehot_crosses_lr"] >= 0.65
    for term in ("style", "subject", "mood"):
        assert c["auc_without_term"][term] < c["auc_true_terms_lr"] - 0.02, term
    loss = c["auc_loss_by_taste_type"]
    assert loss["style"]["auc_loss_without_style"] > loss["style"]["auc_loss_without_subject"]
    assert loss["subject"]["auc_loss_without_subject"] > loss["subject"]["auc_loss_without_style"]
    assert loss["mood"]["auc_loss_without_mood"] > loss["mood"]["auc_loss_without_style"]


def test_click_terms_take_attributes_read_from_features_as_distributions(world: World):
    from aigcrec.world.check import ATTRIBUTES, CLICK_TERMS, click_terms

    true = click_terms(world)
    items = world.items.set_index("item_id")
    onehot = {r: pd.get_dummies(items[r]).astype(float) for r in ATTRIBUTES}
    pd.testing.assert_frame_equal(click_terms(world, onehot), true)
    # a feature that says nothing about the style: the style term is the user's mean affinity
    labels = sorted(items["style"].unique())
    blind = pd.DataFrame(1 / len(labels), index=items.index, columns=labels)
    terms = click_terms(world, {"style": blind})
    users = world.truth["users"]
    expect = [users[u]["w_style"] * np.mean([users[u]["style_affinity"][s] for s in labels])
              for u in world.interactions["user_id"]]
    np.testing.assert_allclose(terms["style"], expect)
    # ... and a find_specific session that named a style matches it with probability 1/8
    pd.testing.assert_frame_equal(terms.drop(columns=["style", "target"]), true.drop(columns=["style", "target"]))
    assert set(np.round(terms["target"][terms["target"] != true["target"]], 6)) == {round(1 / len(labels), 6)}
    # without the session's affect the find_specific target is unknown and the mood term is an expectation
    blind_session = click_terms(world, session_known=False)
    assert (blind_session["target"] == 0).all() and (true["target"] > 0).any()
    assert not np.allclose(blind_session["mood"], true["mood"])
    assert list(blind_session.columns) == list(CLICK_TERMS)


def test_each_affect_modality_is_informative_but_below_all_together(world: World):
    from aigcrec.world.check import affect_oracle

    a = affect_oracle(world)
    chance = a["chance_accuracy"]
    together = a["emotion"]["text+face+voice"]["accuracy"]
    for m in ("text", "face", "voice"):
        alone = a["emotion"][m]["accuracy"]
        assert alone > chance + 0.1, (m, alone)
        assert alone < together - 0.05, (m, alone, together)
    assert a["intent_from_text"]["accuracy"] > 0.6


def test_contact_sheet_and_check_command(tiny_world: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from aigcrec.cli.main import app
    from aigcrec.world import contact_sheet

    sheet = contact_sheet(tiny_world, thumb=32)
    assert sheet.size[1] == 18 + 8 * 34
    out = tmp_path / "check.json"
    res = CliRunner().invoke(app, ["world", "--check", str(tiny_world), "--json", str(out), "--no-affect"])
    assert res.exit_code == 0, res.output
    stats = json.loads(out.read_text())
    assert stats["clicks"]["auc_true_terms_lr"] > 0.8
    # the text knobs' defaults: descriptive tags given half the time, 40 % untitled
    names = stats["text_names"]
    assert 0.6 < names["subject"] < 0.95 and 0.3 < names["style"] < 0.7 and 0.3 < names["palette"] < 0.7
    assert "names their subject" in res.output
    res = CliRunner().invoke(app, ["world", "--check", str(tmp_path / "nothing")])
    assert res.exit_code != 0


def test_world_command_generates(tmp_path: Path):
    from typer.testing import CliRunner

    from aigcrec.cli.main import app

    cfg = tmp_path / "w.yaml"
    cfg.write_text("world:\n  n_items: 24\n  n_users: 6\n  n_sessions: 24\n  image_size: 64\n")
    res = CliRunner().invoke(app, ["world", "--out", str(tmp_path / "w"), "--size", "tiny", "--seed", "3",
                                   "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    w = load_world(tmp_path / "w")
    assert len(w.items) == 24 and w.manifest["seed"] == 3
    assert Image.open(w.items["image_path"].iloc[0]).size == (64, 64)


def test_world_identity_changes_when_a_world_is_regenerated_in_the_same_folder(tiny_world: Path, tmp_path: Path):
    from aigcrec.data.world import world_identity

    manifest = json.loads((tiny_world / "world.json").read_text())
    (tmp_path / "world.json").write_text(json.dumps(manifest))
    before = world_identity(tmp_path)
    assert before.endswith("@" + manifest["config_digest"]) and before == world_identity(tmp_path)
    (tmp_path / "world.json").write_text(json.dumps({**manifest, "config_digest": "another"}))
    assert world_identity(tmp_path) != before
