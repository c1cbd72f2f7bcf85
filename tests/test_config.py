"""Strict YAML configuration: unknown keys and bad values name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigcrec.config import AppConfig, ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults_build_without_a_file():
    cfg = load_config(None)
    assert isinstance(cfg, AppConfig)
    assert cfg.seed == 0


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path):
    load_config(path)


def test_unknown_top_level_key_names_key_file_and_suggestion(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("seed: 1\nsede: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    msg = str(err.value)
    assert str(f) in msg and "'sede'" in msg and "did you mean 'seed'" in msg


def test_unknown_nested_key_is_named_with_its_section(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("world:\n  no_such_knob: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'world\.no_such_knob'"):
        load_config(f)


def test_wrong_type_names_key_and_value(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("seed: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert "key 'seed'" in str(err.value) and "'lots'" in str(err.value)


def test_overrides_win_and_none_keeps_file_value(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 5\nout: somewhere\n")
    cfg = load_config(f, seed=None, out=tmp_path / "o")
    assert cfg.seed == 5 and cfg.out == tmp_path / "o"


@pytest.mark.parametrize("text,needle", [
    ("- 1\n- 2\n", "expected a mapping"), ("a: [1,\n", "not valid YAML"),
    ("seed: 1\nranking:\n  seeds: [0]\nranking:\n  split_seed: 2\n",
     r"'ranking' given twice in one mapping \(first on line 2\)"),
])
def test_malformed_files(tmp_path, text, needle):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(f)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
