"""The saved-component convention (aigcrec.saved): config.json with component and format, legacy names read."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from aigcrec.config_base import ConfigError
from aigcrec.content.config import ContentConfig, ImageEncoderConfig, TextEncoderConfig
from aigcrec.content.encoder import ContentEncoder
from aigcrec.saved import CONFIG_FILE, LEGACY_NAMES, config_file, read_config, write_config


def test_config_json_carries_component_and_format(tmp_path):
    path = write_config(tmp_path, "two_tower", 1, {"config": {"dim": 8}}, indent=1)
    assert path == tmp_path / CONFIG_FILE
    assert json.loads(path.read_text()) == {"component": "two_tower", "format": 1, "config": {"dim": 8}}
    assert read_config(tmp_path, "two_tower", 1) == ({"config": {"dim": 8}}, 1, path)
    with pytest.raises(ValueError, match=r"\['format'\] are the saved-config header"):
        write_config(tmp_path, "two_tower", 1, {"format": 2})
    with pytest.raises(ValueError, match="unknown saved component 'ranking'"):
        write_config(tmp_path, "ranking", 1, {})


def test_legacy_names_are_read_and_config_json_wins(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"architecture": "mlp"}))
    assert config_file(tmp_path, "affect_model") == tmp_path / "model.json"
    assert read_config(tmp_path, "affect_model", 1) == ({"architecture": "mlp"}, 1, tmp_path / "model.json")
    write_config(tmp_path, "affect_model", 1, {"architecture": "mmei"})
    assert read_config(tmp_path, "affect_model", 1)[0] == {"architecture": "mmei"}
    # The ranker's old file kept its own version field; the body keeps it for the ranker to read.
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "ranker.json").write_text(json.dumps({"format_version": 2, "kind": "umair_fps"}))
    assert read_config(tmp_path / "r", "ranker", 3)[:2] == ({"format_version": 2, "kind": "umair_fps"}, 1)
    # Image and text encoders wrote config.json already, without the header: still theirs.
    (tmp_path / "i").mkdir()
    (tmp_path / "i" / "config.json").write_text(json.dumps({"backbone": "random:tiny"}))
    assert read_config(tmp_path / "i", "image_encoder", 1)[0] == {"backbone": "random:tiny"}
    assert set(LEGACY_NAMES) == {"ranker", "affect_model", "content_encoder", "image_encoder", "text_encoder",
                                 "two_tower", "item_item"}


def test_a_folder_that_is_not_the_component_is_refused_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not a saved ranker \(no config.json or ranker.json\)"):
        read_config(tmp_path, "ranker", 3)
    assert config_file(tmp_path, "ranker") is None
    write_config(tmp_path, "image_encoder", 1, {"backbone": "random:tiny"})
    with pytest.raises(ConfigError, match=r"config.json: a saved image_encoder, not a ranker"):
        read_config(tmp_path, "ranker", 3)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"backbone": "random:tiny"}))  # an old image encoder's
    with pytest.raises(ConfigError, match="no 'component' field, so not a saved ranker"):
        read_config(tmp_path, "ranker", 3)
    write_config(tmp_path, "ranker", 4, {})
    with pytest.raises(ConfigError, match=r"format 4 of a saved ranker; this version of aigcrec reads formats 1 to 3"):
        read_config(tmp_path, "ranker", 3)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        read_config(tmp_path, "ranker", 3)
    (tmp_path / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object, got list"):
        read_config(tmp_path, "ranker", 3)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_a_content_encoder_saved_before_the_convention_loads(tmp_path, tiny_sentence_model):
    """content.json, image/config.json and text/config.json without the header (as saved before): the
    same encoder comes back; saved now, every folder holds config.json with its component."""
    import torch

    torch.manual_seed(0)
    config = ContentConfig(image=ImageEncoderConfig(backbone="random:tiny", image_size=64, style_layers=[0, 1],
                                                    runtime="torch", batch_size=4),
                           text=TextEncoderConfig(model=str(tiny_sentence_model)))
    encoder = ContentEncoder(config)
    path = encoder.save(tmp_path / "enc")
    parts = {"": "content_encoder", "image": "image_encoder", "text": "text_encoder"}
    for sub, component in parts.items():
        assert json.loads((path / sub / CONFIG_FILE).read_text())["component"] == component
    want = encoder.encode_item(_png(), "a red fox", ["fox"])
    for sub in parts:
        body = json.loads((path / sub / CONFIG_FILE).read_text())
        del body["component"], body["format"]
        (path / sub / CONFIG_FILE).write_text(json.dumps(body))
    (path / CONFIG_FILE).rename(path / "content.json")
    old = ContentEncoder.load(path)
    assert old.config == encoder.config and old.versions == encoder.versions
    got = old.encode_item(_png(), "a red fox", ["fox"])
    assert set(got) == set(want)
    for name, v in want.items():
        np.testing.assert_allclose(got[name], v, atol=1e-6)
