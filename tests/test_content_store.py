"""Feature store: cache by (item, content hash, encoder), re-runs, problems.csv, resume, encode_item parity."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from aigcrec.content.config import ContentConfig, ImageEncoderConfig, TextEncoderConfig
from aigcrec.content.encoder import ContentEncoder
from aigcrec.content.store import FeatureStore, encode_catalog


@pytest.fixture(scope="module")
def encoder(tiny_sentence_model) -> ContentEncoder:
    import torch

    torch.manual_seed(0)
    config = ContentConfig(image=ImageEncoderConfig(backbone="random:tiny", image_size=64, style_layers=[0, 1],
                                                    runtime="torch", batch_size=16),
                           text=TextEncoderConfig(model=str(tiny_sentence_model)))
    return ContentEncoder(config)


@pytest.fixture()
def catalog(tiny_world, tmp_path):
    """A private copy of the tiny world's catalog files (tests edit it)."""
    out = tmp_path / "catalog"
    out.mkdir()
    for name in ("items.csv", "world.json", "text_pairs.csv"):
        shutil.copy(tiny_world / name, out / name)
    shutil.copytree(tiny_world / "images", out / "images")
    return out


def test_encode_writes_aligned_features(catalog, tmp_path, encoder):
    store = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    items = pd.read_csv(catalog / "items.csv", dtype=str)
    assert store.item_ids == items["item_id"].tolist()
    assert {"e_sem", "e_sty", "e_tsem"} <= set(store.names)
    for name, dim in (("e_sem", 64), ("e_sty", 8 * 9 // 2 + 16 * 17 // 2), ("e_tsem", 32)):
        ids, mat = store.load(name)
        assert ids == store.item_ids and mat.shape == (len(items), dim) and mat.dtype == np.float32
    assert store.manifest["encoders"] == encoder.versions
    assert store.problems().empty
    with pytest.raises(KeyError, match="available: e_sem"):
        store.load("e_nope")


def test_rerun_encodes_only_new_or_changed_items(catalog, tmp_path, encoder):
    first = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    _, sem_before = first.load("e_sem")
    again = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    assert again.manifest["last_run"]["images_encoded"] == 0
    assert again.manifest["last_run"]["texts_encoded"] == 0
    np.testing.assert_array_equal(again.load("e_sem")[1], sem_before)

    items = pd.read_csv(catalog / "items.csv", dtype=str, keep_default_na=False)
    changed, corrupt, silent = items["item_id"].iloc[:3]
    shutil.copy(catalog / items["image"].iloc[5], catalog / items["image"].iloc[0])  # new pixels for item 0
    (catalog / items["image"].iloc[1]).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    items.loc[2, ["title", "title_ja", "title_zh", "tags"]] = ["", "", "", "[]"]
    items.to_csv(catalog / "items.csv", index=False)

    store = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    run = store.manifest["last_run"]
    assert run["images_encoded"] == 1 and run["texts_encoded"] == 0
    problems = store.problems()
    assert set(zip(problems["item_id"], problems["reason"], problems["severity"])) == {
        (corrupt, "unreadable", "warning"), (corrupt, "served_text_only", "warning"), (silent, "empty_text", "error")}
    sem_ids, sem = store.load("e_sem")
    txt_ids, _ = store.load("e_tsem")
    # The corrupt image's item has a text: served text-only, its image row imputed with the catalog mean.
    assert corrupt in sem_ids and silent in sem_ids and store.text_only == [corrupt]
    assert store.has_image([changed, corrupt, silent]).tolist() == [True, False, True]
    real = [r for r, i in enumerate(sem_ids) if i != corrupt]
    np.testing.assert_allclose(sem[sem_ids.index(corrupt)], sem[real].mean(axis=0), atol=1e-5)
    assert silent not in txt_ids and corrupt in txt_ids
    # A re-run does not take the imputed row for an encoded vector: the fixed image is encoded again.
    shutil.copy(catalog / items["image"].iloc[6], catalog / items["image"].iloc[1])
    fixed = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    assert fixed.manifest["last_run"]["images_encoded"] == 1 and fixed.text_only == []
    np.testing.assert_allclose(sem[sem_ids.index(changed)], sem_before[5], atol=1e-6)


def test_interrupted_run_resumes_from_shards(catalog, tmp_path, encoder, monkeypatch):
    calls = {"n": 0}
    real = encoder.image.forward_arrays

    def crash_on_third_batch(x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(x)

    monkeypatch.setattr(encoder.image, "forward_arrays", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    assert len(list((tmp_path / "fs" / "shards").glob("image-*.npz"))) == 2
    monkeypatch.setattr(encoder.image, "forward_arrays", real)
    store = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    n_items = len(store.item_ids)
    assert store.manifest["last_run"]["images_encoded"] == n_items - 2 * 16
    assert not (tmp_path / "fs" / "shards").exists()
    fresh = encode_catalog(catalog, tmp_path / "fresh", encoder=encoder, show_progress=False)
    np.testing.assert_allclose(store.load("e_sty")[1], fresh.load("e_sty")[1], atol=1e-6)


def test_encode_item_matches_the_store(catalog, tmp_path, encoder):
    store = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    from aigcrec.data.catalog import load_catalog

    row = load_catalog(catalog).iloc[7]
    one = encoder.encode_item((catalog / row["image_path"]).read_bytes(), row["title"], row["tags"],
                              title_ja=row["title_ja"], title_zh=row["title_zh"])
    for name in ("e_sem", "e_sty", "e_tsem"):
        ids, mat = store.load(name)
        np.testing.assert_allclose(one[name], mat[ids.index(row["item_id"])], atol=1e-5)
    with pytest.raises(ValueError, match="title or at least one tag"):
        encoder.encode_item(None, "", [])


def test_a_format_1_store_reads_as_every_item_having_an_image(catalog, tmp_path, encoder):
    """Stores written before text-only items (format 1: no has_image column) still read."""
    store = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    index = pd.read_parquet(tmp_path / "fs" / "image_index.parquet")
    index.drop(columns="has_image").to_parquet(tmp_path / "fs" / "image_index.parquet", index=False)
    old = FeatureStore(tmp_path / "fs")
    ids, _ = old.load("e_sem")
    assert old.has_image(ids).all() and old.text_only == [] and ids == store.load("e_sem")[0]
    again = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    assert again.manifest["last_run"]["images_encoded"] == 0 and again.manifest["format"] == 2


def test_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a feature store"):
        FeatureStore(tmp_path)


def test_store_files_are_replaced_atomically(catalog, tmp_path, encoder, monkeypatch):
    """A re-run writes each matrix, index and manifest beside the old one and renames it over: a process
    reading the store meanwhile (a benchmark, a server) never loads a half-written file."""
    import aigcrec.content.store as store_module

    first = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    real = store_module._replace_atomically
    whole_while_writing = []

    def spy(target, write):
        def write_then_read_the_old(tmp):
            write(tmp)
            if target.suffix == ".npy":
                np.load(target)  # what a reader sees now: the previous file, complete
            whole_while_writing.append(target.name)
        real(target, write_then_read_the_old)

    monkeypatch.setattr(store_module, "_replace_atomically", spy)
    again = encode_catalog(catalog, tmp_path / "fs", encoder=encoder, show_progress=False)
    assert {"e_sem.npy", "e_sty.npy", "e_tsem.npy", "manifest.json"} <= set(whole_while_writing)
    assert not [p.name for p in again.path.iterdir() if ".tmp-" in p.name]
    np.testing.assert_array_equal(again.load("e_sem")[1], first.load("e_sem")[1])
