"""`aigcrec data validate`: a good folder exits 0 with counts; a broken one exits 1 naming file and row."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aigcrec.cli.main import app
from aigcrec.data import samples
from conftest import dataset_dir

runner = CliRunner()


def validate(*args: str):
    return runner.invoke(app, ["data", "validate", *args])


@pytest.mark.parametrize("fmt,write,expect", [
    ("movielens", samples.write_movielens_sample, ["ratings", "users_only_in_ratings", "users.age"]),
    ("fer2013", samples.write_fer2013_sample, ["images", "train.emotion", "sadness"]),
    ("meld", samples.write_meld_sample, ["train.dialogues", "dev.emotion", "joy"]),
    ("clinc150", samples.write_clinc150_sample, ["oos_test", "intents", "banking"]),
    ("catalog", samples.write_world_catalog_sample, ["items_with_image", "tag_language", "items.image"]),
    ("context", samples.write_context_sample, ["context_columns", "context.mood", "ratings.temperature"]),
])
def test_validate_good_folder(tmp_path, fmt, write, expect):
    root = write(tmp_path / fmt)
    out = tmp_path / "report.json"
    result = validate("--format", fmt, str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    for word in expect:
        assert word in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["root"] == str(root.resolve())
    assert report["format"].startswith(fmt)


def test_validate_report_counts_and_folder_out(tmp_path):
    root = samples.write_movielens_sample(tmp_path / "ml")
    result = validate("-f", "movielens", str(root), "-o", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "reports" / "validate_movielens.json").read_text(encoding="utf-8"))
    assert report["counts"]["ratings"] == 8
    assert report["missing"]["users.features"] == 2
    assert report["distributions"]["rating"] == {"1": 1, "2": 2, "3": 1, "4": 2, "5": 2}


def test_validate_broken_folder_names_file_row_field(tmp_path):
    root = samples.write_movielens_sample(tmp_path / "ml")
    ratings = root / "ratings.csv"
    ratings.write_text(ratings.read_text(encoding="utf-8").replace("2,3,1,", "2,3,9,"), encoding="utf-8")
    result = validate("--format", "movielens", str(root))
    assert result.exit_code == 1
    assert "ratings.csv row 4, field 'rating'" in result.output
    assert "expected an integer in 1..5, got '9'" in result.output
    assert "Traceback" not in result.output


def test_validate_wrong_format_and_missing_folder(tmp_path):
    root = samples.write_movielens_sample(tmp_path / "ml")
    result = validate("--format", "world", str(root))
    assert result.exit_code == 1 and "world.json" in result.output
    result = validate("--format", "meld", str(root))
    assert result.exit_code == 1 and "train_sent_emo.csv" in result.output and "not found" in result.output
    result = validate("--format", "clinc150", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and "dataset folder not found" in result.output


def test_validate_media_check_can_be_skipped(tmp_path):
    root = samples.write_world_catalog_sample(tmp_path / "world")
    (root / "images" / "i1.png").unlink()
    assert validate("--format", "catalog", str(root)).exit_code == 1
    result = validate("--format", "catalog", str(root), "--no-check-media")
    assert result.exit_code == 0, result.output


def test_validate_generated_world(tiny_world, tmp_path):
    out = tmp_path / "world.json"
    result = validate("--format", "world", str(tiny_world), "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["counts"]["items"] > 0 and report["counts"]["impressions"] > 0
    assert set(report["distributions"]["impressions.label"]) <= {"0", "1"}
    assert sum(report["distributions"]["sessions.emotion"].values()) == report["counts"]["sessions"]


@pytest.mark.datasets
def test_validate_real_clinc150():
    result = validate("--format", "clinc150", str(dataset_dir("clinc150")))
    assert result.exit_code == 0, result.output
    assert "15000" in result.output and "150" in result.output


def test_data_demo_stage(tiny_world, tmp_path, monkeypatch):
    from aigcrec.config import AppConfig
    from aigcrec.demo import data as demo
    from aigcrec.demo import DemoContext
    from aigcrec.report import Report

    samples.write_clinc150_sample(tmp_path / "clinc150")
    samples.write_meld_sample(tmp_path / "meld")
    (tmp_path / "meld" / "dev_sent_emo.csv").unlink()  # a broken dataset is listed, not fatal
    monkeypatch.setenv("AIGCREC_DATASETS", str(tmp_path))
    ctx = DemoContext(config=AppConfig(), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache",
                      report=Report("t"), artifacts={"world_dir": tiny_world})
    demo.run(ctx)
    assert ctx.metrics["data"]["datasets_valid"] == "2/5"  # world + clinc150 ok; meld invalid; 2 absent
    assert ctx.metrics["data"]["clinc150_counts"]["train"] == 9
    html = ctx.report.to_html()
    assert "invalid" in html and "dev_sent_emo.csv" in html and "absent" in html
