"""`aigcrec encode`, `encode finetune-image`, `encode finetune-text`, `evaluate content` on the tiny world."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from aigcrec.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def cfg(tiny_sentence_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "content.yaml"
    path.write_text(yaml.safe_dump({"content": {
        "image": {"backbone": "random:tiny", "image_size": 64, "style_layers": [0, 1], "runtime": "torch"},
        "text": {"model": str(tiny_sentence_model), "epochs": 1},
        "finetune_image": {"epochs": 1, "train_blocks": 1, "min_tag_count": 3},
    }}))
    return path


def test_encode_requires_a_catalog(tmp_path):
    result = runner.invoke(app, ["encode", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--catalog" in result.output


def test_encode_and_finetune_image(tiny_world, tmp_path, cfg):
    result = runner.invoke(app, ["encode", "--catalog", str(tiny_world), "--out", str(tmp_path / "fs"), "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    base = json.loads((tmp_path / "fs" / "manifest.json").read_text())
    assert {"e_sem", "e_sty", "e_tsem"} <= set(base["features"])

    result = runner.invoke(app, ["encode", "finetune-image", "--catalog", str(tiny_world), "--out",
                                 str(tmp_path / "enc"), "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "enc" / "finetune_image.json").read_text())
    assert summary["n_images"] == base["n_catalog_items"] and len(summary["classes"]) >= 2

    result = runner.invoke(app, ["encode", "--catalog", str(tiny_world), "--encoder", str(tmp_path / "enc"),
                                 "--out", str(tmp_path / "fs2"), "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    tuned = json.loads((tmp_path / "fs2" / "manifest.json").read_text())
    assert tuned["encoders"]["image"] != base["encoders"]["image"]  # new weights, new cache key
    assert tuned["encoders"]["text"] == base["encoders"]["text"]


def test_evaluate_content_writes_the_documented_json(tiny_world, tmp_path, cfg):
    result = runner.invoke(app, ["evaluate", "content", "--world", str(tiny_world), "--out", str(tmp_path),
                                 "-c", str(cfg)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "content.json").read_text())
    for key in ("style_p_at_10", "subject_p_at_10", "style_p_at_10_across_subjects", "subject_p_at_10_across_styles"):
        assert set(data[key]) >= {"e_sty", "e_sem"}
        assert all(0.0 <= v <= 1.0 for v in data[key].values())
    tp = data["text_pairs"]
    assert {"recall_at_1_before", "recall_at_1_after", "mrr_before", "mrr_after"} <= set(tp)
    assert tp["fine_tuned"] and {"ja-en", "zh-en"} <= set(tp["by_langs"])
    assert data["images_per_second"] > 0 and data["texts_per_second"] > 0
