"""The real-data affect benchmarks default to their measured recipes (aigcrec.affect.recipes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from aigcrec.affect import finetune_text
from aigcrec.affect.config import AffectConfig
from aigcrec.affect.data import AffectData
from aigcrec.affect.recipes import REAL_DATA_RECIPES, task_config
from aigcrec.cli.main import app
from aigcrec.config import AppConfig, validate_config
from aigcrec.data import samples
from test_affect import _tiny_bert


def test_each_real_data_task_has_a_recipe_and_the_world_keeps_the_class_defaults():
    assert set(REAL_DATA_RECIPES) == {"face-emotion", "text-emotion", "intent"}
    plain = AffectConfig()
    cfg, applied = task_config("fusion", plain)
    assert applied is None and cfg is plain
    for task in REAL_DATA_RECIPES:
        cfg, applied = task_config(task, plain)
        assert applied == REAL_DATA_RECIPES[task] and cfg.mmei.class_weighted is False
        assert cfg.mmei.batch_size == 256 and plain.mmei.batch_size == 64  # the given config is not modified
        assert task_config(task, plain, use_recipe=False) == (plain, None)
    meld = task_config("text-emotion", plain)[0].encoders
    assert meld.text_finetune.enabled and meld.text_finetune.context_turns >= 1 and meld.text_finetune.train_layers == 3
    clinc = task_config("intent", plain)[0].encoders
    assert clinc.text_finetune.enabled and clinc.text_finetune.context_turns == 0
    face = task_config("face-emotion", plain)[0].encoders
    assert face.face_train.enabled and face.face_train.network == "face-net" and not face.text_finetune.enabled


def test_what_a_config_sets_wins_over_the_recipe_and_the_rest_stays_the_recipe():
    affect = validate_config({"affect": {"encoders": {"text_finetune": {"train_layers": 1, "context_turns": 0}},
                                         "mmei": {"epochs": 2}}}, AppConfig, "test.yaml").affect
    cfg, applied = task_config("text-emotion", affect)
    ft = cfg.encoders.text_finetune
    assert (ft.train_layers, ft.context_turns, cfg.mmei.epochs) == (1, 0, 2)  # the config's
    assert ft.enabled and ft.epochs == 3 and cfg.mmei.batch_size == 256 and cfg.encoders.max_tokens == 64
    assert applied == REAL_DATA_RECIPES["text-emotion"]


def test_benchmark_text_emotion_defaults_read_the_dialogue_context_and_record_the_recipe(tmp_path, monkeypatch):
    tok, model = _tiny_bert()
    monkeypatch.setattr(finetune_text, "load_base", lambda path=None: (tok, model))
    samples.write_meld_sample(tmp_path / "meld")
    tiny = {"encoders": {"max_tokens": 24, "text_finetune": {"train_layers": 1, "epochs": 1, "batch_size": 4}},
            "mmei": {"epochs": 1, "width": 8, "heads": 2, "batch_size": 16}}
    lengths = {}
    for name, extra in (("context", {"context_speakers": False}), ("alone", {"context_turns": 0})):
        conf = tmp_path / f"{name}.yaml"
        affect = json.loads(json.dumps(tiny))
        affect["encoders"]["text_finetune"].update(extra)
        conf.write_text(yaml.safe_dump({"affect": affect}))
        res = CliRunner().invoke(app, ["benchmark", "affect", "--task", "text-emotion", "--data-dir",
                                       str(tmp_path / "meld"), "--seeds", "1", "--config", str(conf),
                                       "--out", str(tmp_path / name), "--cache-dir", str(tmp_path / f"cache-{name}")])
        assert res.exit_code == 0, res.output
        result = json.loads((tmp_path / name / "affect.json").read_text())
        assert result["recipe"] == REAL_DATA_RECIPES["text-emotion"]
        ft = result["config"]["encoders"]["text_finetune"]
        assert ft["enabled"] and ft["train_layers"] == 1 and result["config"]["mmei"]["batch_size"] == 16
        (test,) = (tmp_path / f"cache-{name}").glob("meld-ft-test-*-seed0.npz")
        lengths[name] = AffectData.load(test).features["text"].mask.sum(1)
    # the sample's test dialogues have 3 utterances each: all but their first read earlier turns too
    first = np.arange(4) % 3 == 0
    assert (lengths["context"][first] == lengths["alone"][first]).all()
    assert (lengths["context"][~first] > lengths["alone"][~first]).all()


def test_no_recipe_gives_the_class_defaults_and_a_misspelt_field_is_named(tmp_path, monkeypatch):
    tok, model = _tiny_bert()
    monkeypatch.setattr(finetune_text, "load_base", lambda path=None: (tok, model))
    samples.write_clinc150_sample(tmp_path / "clinc150")
    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump({"affect": {
        "encoders": {"max_tokens": 12, "text_finetune": {"enabled": True, "train_layers": 1, "epochs": 1}},
        "mmei": {"epochs": 1, "width": 8, "heads": 2}}}))
    res = CliRunner().invoke(app, ["benchmark", "affect", "--task", "intent", "--data-dir", str(tmp_path / "clinc150"),
                                   "--seeds", "1", "--config", str(conf), "--no-recipe", "--out", str(tmp_path / "o"),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "o" / "affect.json").read_text())
    assert result["recipe"] is None and result["config"]["mmei"] == {**AffectConfig().mmei.model_dump(),
                                                                     "epochs": 1, "width": 8, "heads": 2}
    conf.write_text(yaml.safe_dump({"affect": {"encoders": {"text_finetune": {"context_turn": 2}}}}))
    res = CliRunner().invoke(app, ["benchmark", "affect", "--task", "text-emotion", "--data-dir",
                                   str(tmp_path / "clinc150"), "--config", str(conf), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "context_turns" in res.output  # strict config: did-you-mean
