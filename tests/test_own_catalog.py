"""Your own catalog end to end, in each layout the loaders read: ``aigcrec build`` (CLI), then the service on
its artifacts through HTTP (FastAPI TestClient): recommend for a known and an unknown user, post an item,
post feedback, restart on the same SQLite file and find the state still there.

Small real models (random tiny image backbone, a 1-layer sentence model, one ranker epoch): the point is
that the flow works for any folder, not the models' quality.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

KEY = "own-catalog-key"


@pytest.fixture(scope="module")
def config_file(tiny_sentence_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(json.dumps({
        "content": {"image": {"backbone": "random:tiny", "image_size": 64, "runtime": "torch"},
                    "text": {"model": str(tiny_sentence_model)}},
        "ranking": {"train": {"max_epochs": 1}},
        "retrieval": {"two_tower": {"epochs": 2, "batch_size": 64}},
    }), encoding="utf-8")
    return path


def _catalog(layout: str, root: Path, tiny_world: Path) -> Path:
    from aigcrec.data import samples

    if layout == "world":
        return tiny_world
    if layout == "movielens":
        return samples.write_movielens_posters_sample(root / "ml")
    if layout == "catalog-textonly":  # no image at all: every item served text-only
        return samples.write_catalog_layout_sample(root / "txt", images=False)
    if layout == "context":  # a context-aware rating set: no images, mood + hour as the explicit context
        return samples.write_context_layout_sample(root / "ctx")
    return samples.write_catalog_layout_sample(root / "cat", broken=True)


CONTEXT_TRAIN = {"max_epochs": 20, "batch_size": 32, "lr": 0.005}
"""The context sample's ranker training: it must learn mood x item from 190 ratings (one epoch of the
default batch is a single step, which learns nothing)."""


@pytest.fixture(scope="module", params=["catalog", "movielens", "world", "catalog-textonly", "context"])
def built(request, tiny_world, config_file, tmp_path_factory):
    """(layout, catalog folder, models folder) after `aigcrec build`."""
    from typer.testing import CliRunner

    from aigcrec.cli.main import app

    root = tmp_path_factory.mktemp(f"own-{request.param}")
    catalog = _catalog(request.param, root, tiny_world)
    models = root / "models"
    if request.param == "context":
        cfg = json.loads(config_file.read_text(encoding="utf-8"))
        cfg["ranking"]["train"] = CONTEXT_TRAIN
        config_file = root / "context.yaml"
        config_file.write_text(json.dumps(cfg), encoding="utf-8")
    result = CliRunner().invoke(app, ["build", "--catalog", str(catalog), "--out", str(models),
                                      "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "[4/5] export" in result.output and "[5/5] retrieval" in result.output and "serve it with: aigcrec serve --models" in result.output
    return request.param, catalog, models


def _open(models: Path, db: Path, config_file: Path):
    from aigcrec.config import load_config
    from aigcrec.service.assemble import ServicePaths, open_real_state

    cfg = load_config(config_file)
    cfg.service.api_key = KEY
    return open_real_state(cfg, ServicePaths.from_models(models / "artifacts.json"), db)


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (24, 24), (200, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _known_user(catalog: Path) -> str:
    from aigcrec.data.catalog import read_catalog
    from aigcrec.data.layouts import load_interactions

    items = read_catalog(catalog, check_images=False).items
    inter = load_interactions(catalog, set(items["item_id"]))
    return str(inter.loc[inter["label"] == 1, "user_id"].iloc[-1])


def test_build_writes_a_typed_manifest_that_serve_reads(built):
    from aigcrec.service.artifacts import ArtifactsManifest
    from aigcrec.service.assemble import ServicePaths

    layout, catalog, models = built
    manifest = ArtifactsManifest.load(models)
    assert manifest.layout == layout.split("-")[0]
    assert [s.name for s in manifest.steps] == ["catalog", "encode", "ranker", "export", "retrieval"]
    assert manifest.steps[3].figures["max_abs_diff"] <= 1e-5
    assert manifest.steps[0].figures["interactions"] > 0 and manifest.retrieval_dir == "retrieval"
    assert manifest.steps[4].figures["two_tower_positives"] > 0
    # The folder and the file name the same artifacts; relative paths resolve from the manifest's folder.
    paths = ServicePaths.from_models(models)
    assert paths == ServicePaths.from_models(models / "artifacts.json")
    assert paths.catalog_dir == catalog.resolve() and paths.ranker_dir == (models / "ranker").resolve()
    assert paths.retrieval_dir == (models / "retrieval").resolve()
    fig = manifest.steps[4].figures  # the item-item model: built from the same positives, or skipped saying why
    if "item_item_items" in fig:
        assert (models / "retrieval" / "item_item" / "config.json").is_file() and fig["item_item_positives"] > 0
    else:
        assert str(fig["item_item"]).startswith("skipped: ")
    assert (models / "ranker.onnx").is_file() and (models / "content" / "config.json").is_file()


@pytest.mark.slow
def test_recommend_post_feedback_restart(built, config_file, tmp_path, caplog):
    from fastapi.testclient import TestClient

    from aigcrec.service.app import create_app

    layout, catalog, models = built
    db = tmp_path / "service.sqlite"
    auth = {"Authorization": f"Bearer {KEY}"}
    known = _known_user(catalog)
    with caplog.at_level(logging.WARNING, logger="aigcrec.service"):
        state = _open(models, db, config_file)
    assert "serving without affect" in caplog.text and "422" in caplog.text
    with TestClient(create_app(state)) as client:
        warm = client.post("/v1/recommend", json={"user_id": known, "k": 5})
        assert warm.status_code == 200, warm.text
        assert warm.json()["items"] and warm.json()["explanation"]["cold_start"] is False
        cold = client.post("/v1/recommend", json={"user_id": "nobody-yet", "k": 5}).json()
        assert cold["items"] and cold["explanation"]["cold_start"] is True
        # No affect model: signals are refused with 422 and a message, not a 5xx.
        mood = client.post("/v1/recommend", json={"user_id": known, "signals": {"text": "calm please"}})
        assert mood.status_code == 422 and "affect" in mood.json()["detail"]
        # Explicit context: served where the ranker learned context columns, else a 422 naming the key.
        for user in (known, "nobody-yet"):
            ctx = client.post("/v1/recommend", json={"user_id": user, "k": 5, "context": {"mood": "sad"}})
            if layout == "context":
                assert ctx.status_code == 200 and ctx.json()["items"], ctx.text
            else:
                assert ctx.status_code == 422 and "mood" in ctx.json()["detail"], ctx.text

        served = state.pipeline.catalog.meta[0]
        image = _png()  # a served item may be text-only (corrupt or no image), so the new item's image is made here
        new = client.post("/v1/items", headers=auth, json={
            "item_id": "own-new", "title": "a new piece", "tags": [{"text": "new", "lang": "en"}],
            "image": base64.b64encode(image).decode()})
        assert new.status_code == 201, new.text
        liked = served["item_id"]
        fb = client.post("/v1/feedback", headers=auth,
                         json={"user_id": "newcomer", "item_id": liked, "type": "bookmark"})
        assert fb.status_code == 200, fb.text
        assert client.post("/v1/recommend", json={"user_id": "newcomer"}).json()["explanation"]["cold_start"] is False
    state.store.close()

    # Restart: a new app on the same SQLite file serves the posted item and the newcomer's history.
    state = _open(models, db, config_file)
    with TestClient(create_app(state)) as client:
        got = client.get("/v1/items/own-new")
        assert got.status_code == 200 and got.json()["origin"] == "api"
        assert client.get("/v1/items/own-new/image").content == image
        again = client.post("/v1/recommend", json={"user_id": "newcomer", "k": 5}).json()
        assert again["explanation"]["cold_start"] is False
        assert liked not in [i["item_id"] for i in again["items"]]  # seen items stay excluded
    state.store.close()


def test_context_layout_serves_explicit_context(built, config_file, tmp_path, caplog):
    """The context sample (happy raters like m0-m5, sad ones m6-m11; nothing else tells them apart): the
    built ranker reads mood and hour as its explicit context (schema in the bundle), the same user gets
    different lists for the two moods, each leaning to the half that mood likes; an unknown key is a 422
    naming it and the known ones; every item is served text-only, m0 (no title, genres or artist) by its id."""
    from fastapi.testclient import TestClient

    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.service.app import create_app
    from aigcrec.service.artifacts import ArtifactsManifest

    layout, catalog, models = built
    if layout != "context":
        pytest.skip("only the context sample has explicit context columns")
    assert RankerBundle.load(models / "ranker").context_schema == {
        "mood": {"kind": "categorical", "values": ["happy", "sad"]}, "hour": {"kind": "numeric", "values": None}}
    ranker_step = ArtifactsManifest.load(models).steps[2].figures
    assert ranker_step["context"] == "mood,hour" and ranker_step["rows"] == 190
    with caplog.at_level(logging.WARNING, logger="aigcrec.service"):
        state = _open(models, tmp_path / "ctx.sqlite", config_file)
    assert "12 of 12 catalog items are served text-only" in caplog.text
    first_half = {f"m{i}" for i in range(6)}
    with TestClient(create_app(state)) as client:
        assert client.get("/v1/items/m0").json()["title"] == "m0"
        assert client.get("/v1/items/m1").json()["title"] == "Bright song 1"
        for user in ("v0", "nobody-yet"):
            lists = {}
            for mood in ("happy", "sad"):
                r = client.post("/v1/recommend", json={"user_id": user, "k": 5, "exclude_seen": False,
                                                       "context": {"mood": mood, "hour": 20}})
                assert r.status_code == 200, r.text
                lists[mood] = [i["item_id"] for i in r.json()["items"]]
            assert lists["happy"] != lists["sad"]
            assert len(first_half & set(lists["happy"])) > len(first_half & set(lists["sad"])), lists
            plain = client.post("/v1/recommend", json={"user_id": user, "k": 5, "exclude_seen": False})
            assert plain.status_code == 200 and len(plain.json()["items"]) == 5
        bad = client.post("/v1/recommend", json={"user_id": "v0", "context": {"mood": "sad", "weather": "rain"}})
        assert bad.status_code == 422
        assert "weather" in bad.json()["detail"] and "hour" in bad.json()["detail"] and "mood" in bad.json()["detail"]
    state.store.close()


def test_broken_items_are_reported_and_not_served(built, config_file, tmp_path, caplog):
    """The catalog sample's a0 (corrupt image) and a3 (no image) are listed in problems.csv as warnings and
    served text-only; a4 (no image, no text) is an error and skipped."""
    import numpy as np
    import pandas as pd
    from fastapi.testclient import TestClient

    from aigcrec.content.store import FeatureStore
    from aigcrec.service.app import create_app

    layout, catalog, models = built
    if layout != "catalog":
        pytest.skip("only the catalog sample has broken items")
    problems = pd.read_csv(models / "features" / "problems.csv", dtype=str)
    assert set(problems.loc[problems["severity"] == "error", "item_id"]) == {"a4"}
    text_only = problems[problems["reason"] == "served_text_only"]
    assert set(text_only["item_id"]) == {"a0", "a3"} and set(text_only["severity"]) == {"warning"}
    store = FeatureStore(models / "features")
    assert store.manifest["format"] == 2 and store.text_only == ["a0", "a3"]
    assert store.has_image(["a0", "a1", "a3", "a4"]).tolist() == [False, True, False, False]
    ids, e_sem = store.load("e_sem")
    real = [r for r, i in enumerate(ids) if i not in ("a0", "a3")]
    assert np.allclose(e_sem[ids.index("a0")], e_sem[real].mean(axis=0), atol=1e-5)  # imputed: catalog mean
    with caplog.at_level(logging.WARNING, logger="aigcrec.service"):
        state = _open(models, tmp_path / "s.sqlite", config_file)
    assert "1 of 16 catalog items are not served" in caplog.text and "problems.csv" in caplog.text
    assert "2 of 16 catalog items are served text-only" in caplog.text
    with TestClient(create_app(state)) as client:
        assert client.get("/v1/items/a0").status_code == 200
        assert client.get("/v1/items/a3").status_code == 200
        assert client.get("/v1/items/a4").status_code == 404
        # No servable image: the image URL answers 404, so the web demo shows the item's name on a tile.
        assert client.get("/v1/items/a3/image").status_code == 404
        # a1 has no tags, a2 no title: both served (text from what there is).
        assert client.get("/v1/items/a1").json()["tags"] == []
        assert client.get("/v1/items/a2").json()["title"] == ""
    state.store.close()


# -- fast checks: layouts, the CLI's messages, the manifest -------------------------------------------

def test_layouts_are_recognised_and_bad_interactions_name_the_row(tmp_path):
    import pandas as pd

    from aigcrec.data import samples
    from aigcrec.data.errors import DataError
    from aigcrec.data.layouts import detect_layout, load_interactions

    cat = samples.write_catalog_layout_sample(tmp_path / "cat")
    ml = samples.write_movielens_posters_sample(tmp_path / "ml")
    ctx = samples.write_context_layout_sample(tmp_path / "ctx")
    assert detect_layout(cat).name == "catalog" and detect_layout(ml).name == "movielens"
    assert detect_layout(ctx).name == "context" and detect_layout(samples.write_context_sample(tmp_path / "c2")).name == "context"
    inter = load_interactions(ml, {str(i) for i in range(1, 17)})
    assert set(inter["label"]) == {0, 1} and inter["timestamp"].is_monotonic_increasing
    # The context layout labels ratings by the context loader's rule (rating >= 4 on 1-5), in file order.
    rated = pd.read_csv(ctx / "ratings.csv", dtype={"user_id": str, "item_id": str})
    inter = load_interactions(ctx, {f"m{i}" for i in range(12)})
    assert inter["label"].tolist() == (rated["rating"] >= 4).astype(int).tolist()
    assert inter["item_id"].tolist() == rated["item_id"].tolist() and (inter["timestamp"] == 0).all()
    # write_context_sample: A1's rows have timestamps, the others none (read as 0: first, in file order).
    c2 = load_interactions(tmp_path / "c2", {"t1", "tt2", "t3", "t4"})
    assert c2["user_id"].tolist() == ["b2"] * 3 + ["c3"] * 2 + ["z9"] * 2 + ["A1"] * 3
    assert c2["label"].tolist() == [0, 0, 1, 0, 0, 1, 0, 1, 0, 1]  # b2's 3.5 is not >= 4, its 4 is
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a catalog folder"):
        detect_layout(tmp_path / "empty")
    lines = (cat / "interactions.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 2)[0] + ",2," + lines[3].rsplit(",", 1)[1]
    (cat / "interactions.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"interactions.csv row 3, field 'label'"):
        load_interactions(cat, {f"a{i}" for i in range(16)})


def test_serve_without_models_says_how_to_build_them(tmp_path):
    from typer.testing import CliRunner

    from aigcrec.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "make demo" in result.output and "aigcrec build --catalog DIR --out M" in result.output
    result = CliRunner().invoke(app, ["serve", "--catalog", str(tmp_path)])
    assert result.exit_code == 2 and "--catalog needs --models" in result.output
    result = CliRunner().invoke(app, ["serve", "--models", str(tmp_path)])
    assert result.exit_code == 2 and "artifacts.json" in result.output


def test_manifest_validation_and_the_untyped_demo_file(tmp_path):
    from aigcrec.service.artifacts import ArtifactsManifest
    from aigcrec.service.assemble import ServicePaths

    (tmp_path / "artifacts.json").write_text(json.dumps({"catalog_dir": "c", "layout": "catalog", "feture": 1}))
    with pytest.raises(FileNotFoundError, match="not an artifacts manifest"):
        ArtifactsManifest.load(tmp_path)
    # What demo runs before the typed manifest wrote: absolute paths, world_dir; still served.
    old = {"world_dir": str(tmp_path / "w"), "feature_store": str(tmp_path / "f"), "ranker_dir": str(tmp_path / "r"),
           "affect_context": str(tmp_path / "a.parquet")}
    (tmp_path / "artifacts.json").write_text(json.dumps(old))
    paths = ServicePaths.from_models(tmp_path / "artifacts.json")
    assert paths.catalog_dir == tmp_path / "w" and paths.mmei_dir is None


def test_the_demo_writes_the_typed_manifest(tmp_path):
    from aigcrec.config import AppConfig
    from aigcrec.demo import DemoContext, _manifest
    from aigcrec.report import Report
    from aigcrec.service.artifacts import ArtifactsManifest
    from aigcrec.service.assemble import ServicePaths

    run = tmp_path / "runs" / "20260101T000000Z"
    run.mkdir(parents=True)
    cache = tmp_path / "runs" / "cache"
    ctx = DemoContext(AppConfig(), run, cache, Report("t"), artifacts={
        "world_dir": str(cache / "world"), "feature_store": str(cache / "features"),
        "ranker_dir": str(cache / "ranker"), "mmei_dir": str(cache / "mmei"),
        "affect_context": str(cache / "affect.parquet")})
    ctx.record("ranking", "auc", 0.8, headline=True)
    _manifest(ctx, {"world": 1.0, "ranking": 2.5}).save(run)
    (tmp_path / "runs" / "latest").symlink_to(run.name, target_is_directory=True)
    manifest = ArtifactsManifest.load(tmp_path / "runs" / "latest" / "artifacts.json")
    assert manifest.catalog_dir == "../cache/world" and manifest.steps[1].figures == {"auc": 0.8}
    paths = ServicePaths.from_models(tmp_path / "runs" / "latest")
    assert paths.catalog_dir == (cache / "world").resolve() and paths.mmei_dir == (cache / "mmei").resolve()


def test_a_catalog_with_no_text_fails_the_build_saying_why(config_file, tmp_path):
    """Images alone are not enough for the text slot: with neither titles nor tags nothing is served."""
    import pandas as pd
    from typer.testing import CliRunner

    from aigcrec.cli.main import app
    from aigcrec.data import samples

    cat = samples.write_catalog_layout_sample(tmp_path / "cat", n_items=6, n_users=3, per_user=4, images=False)
    items = pd.read_csv(cat / "items.csv", dtype=str, keep_default_na=False)
    items["title"], items["tags"] = "", "[]"
    items.to_csv(cat / "items.csv", index=False)
    result = CliRunner().invoke(app, ["build", "--catalog", str(cat), "--out", str(tmp_path / "M"),
                                      "--config", str(config_file)])
    assert result.exit_code == 1
    assert "no item has a text" in result.output and "problems.csv" in result.output
    assert not (tmp_path / "M" / "artifacts.json").exists()
