"""Loaders: valid sample folders load (with missing optional values counted); broken copies are rejected
with a DataError naming file, row and field; the real datasets (when present) match their README."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aigcrec.data import samples
from aigcrec.data.catalog import detect_format, load_catalog, read_catalog
from aigcrec.data.clinc150 import load_clinc150
from aigcrec.data.errors import DataError
from aigcrec.data.fer2013 import load_fer2013
from aigcrec.data.meld import load_meld, plain_text
from aigcrec.data.movielens import load_movielens
from aigcrec.data.schemas import EMOTIONS
from conftest import dataset_dir


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace the first ``count`` occurrences of ``old`` (which must occur) in a text file."""
    text = path.read_bytes().decode("utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_bytes(text.replace(old, new, count).encode("utf-8"))


def expect_error(load, root: Path, file: str, row: int | None, field: str | None) -> DataError:
    with pytest.raises(DataError) as info:
        load(root)
    err = info.value
    assert Path(err.file).name == file, str(err)
    assert err.row == row, str(err)
    assert err.field == field, str(err)
    message = str(err)
    assert file in message
    if row is not None:
        assert f"row {row}" in message
    if field is not None:
        assert f"field '{field}'" in message
    return err


# ------------------------------------------------------------------------------------------ MovieLens
@pytest.fixture(scope="module")
def ml_sample(tmp_path_factory) -> Path:
    return samples.write_movielens_sample(tmp_path_factory.mktemp("ml") / "ml")


@pytest.fixture
def ml_copy(ml_sample, tmp_path) -> Path:
    return Path(shutil.copytree(ml_sample, tmp_path / "ml"))


def test_movielens_sample_loads_with_missing_values_counted(ml_sample):
    ml = load_movielens(ml_sample)
    assert len(ml.ratings) == 8 and len(ml.items) == 4
    assert ml.ratings["user_id"].tolist()[:3] == ["1", "1", "2"]  # ids as strings
    assert ml.ratings["rating"].dtype == np.int64
    # user 9 rates but has no users.csv row: kept, without features
    assert set(ml.users["user_id"]) == {"1", "2", "3", "9"}
    assert ml.users.set_index("user_id").loc["9"].drop("age").isna().all()
    items = ml.items.set_index("item_id")
    assert items.loc["1", "genres"] == ["Animation", "Children's", "Comedy"]
    assert items.loc["2", "title"] == "Usual Suspects, The"
    assert items.loc["3", "poster_path"] is None and items["release_year"].isna().sum() == 1
    assert items.loc["4", "genres"] == []
    assert Path(items.loc["1", "poster_path"]).is_absolute() and Path(items.loc["1", "poster_path"]).is_file()
    r = ml.report
    assert r.counts["users_only_in_ratings"] == 1
    assert r.missing == {
        "items.title": 0, "items.release_year": 1, "items.genres": 1, "items.poster": 1,
        "users.age": 3, "users.gender": 2, "users.occupation": 2, "users.zip_code": 2, "users.features": 2,
    }
    assert r.distributions["rating"] == {"1": 1, "2": 2, "3": 1, "4": 2, "5": 2}


def test_movielens_interactions_threshold(ml_sample):
    inter = load_movielens(ml_sample).interactions(threshold=4)
    assert list(inter.columns) == ["user_id", "item_id", "label", "timestamp"]
    assert inter["label"].tolist() == [1, 0, 1, 0, 0, 1, 1, 0]
    with pytest.raises(ValueError, match="1..5"):
        load_movielens(ml_sample).interactions(threshold=6)


def test_movielens_ids_are_canonical(ml_copy):
    edit(ml_copy / "ratings.csv", "1,1,5,", "01,001,5,")
    ml = load_movielens(ml_copy)
    assert ml.ratings.iloc[0][["user_id", "item_id"]].tolist() == ["1", "1"]


ML_BROKEN = [
    # (file to edit, old, new, file named, row, field)
    ("ratings.csv", "1,2,3,881250950", "1,2,7,881250950", "ratings.csv", 2, "rating"),
    ("ratings.csv", "2,1,4,", "2,1,0,", "ratings.csv", 3, "rating"),
    ("ratings.csv", "2,3,1,", "u2,3,1,", "ratings.csv", 4, "user_id"),
    ("ratings.csv", "3,2,2,878887116", "3,2,2.7,878887116", "ratings.csv", 5, "rating"),  # not a half star
    ("ratings.csv", "3,2,2,878887116", "3,2,5.5,878887116", "ratings.csv", 5, "rating"),
    ("ratings.csv", "3,2,2,878887116", "3,2,two,878887116", "ratings.csv", 5, "rating"),
    ("ratings.csv", "3,4,5,878887117", "3,4,5", "ratings.csv", 6, None),  # too few fields
    ("ratings.csv", "9,1,4,878887118", "9,77,4,878887118", "ratings.csv", 7, "item_id"),  # unknown item
    ("ratings.csv", "9,4,2,878887119", "9,4,2,", "ratings.csv", 8, "timestamp"),
    ("ratings.csv", "user_id,item_id,rating,timestamp", "user_id,item_id,score,timestamp", "ratings.csv",
     None, "rating"),
    ("users.csv", "2,,F,", "2,x,F,", "users.csv", 2, "age"),
    ("users.csv", "1,24,M", "1,-3,M", "users.csv", 1, "age"),
    ("users.csv", "3,,,,", "1,,,,", "users.csv", 3, "user_id"),  # duplicate id
    ("items.csv", "4,Some Film,1997", "4,Some Film,19x7", "items.csv", 4, "release_year"),
    ("items.csv", "posters/2.jpg", "posters/missing.jpg", "items.csv", 2, "poster"),
    ("items.csv", "posters/4.jpg", "../outside.jpg", "items.csv", 4, "poster"),
    ("items.csv", "Crime|Thriller", "Crime||Thriller", "items.csv", 2, "genres"),
    ("items.csv", "3,unknown,,unknown,", "2,unknown,,unknown,", "items.csv", 3, "item_id"),
]


@pytest.mark.parametrize("file,old,new,named,row,field", ML_BROKEN)
def test_movielens_rejects_broken_copy(ml_copy, file, old, new, named, row, field):
    edit(ml_copy / file, old, new)
    expect_error(load_movielens, ml_copy, named, row, field)


def test_movielens_missing_file_and_bad_encoding(ml_copy, tmp_path):
    (ml_copy / "items.csv").unlink()
    err = expect_error(load_movielens, ml_copy, "items.csv", None, None)
    assert "not found" in str(err)
    other = samples.write_movielens_sample(tmp_path / "ml2")
    with open(other / "items.csv", "ab") as f:
        f.write(b"5,Caf\xe9,1990,Drama,\n")  # latin-1, not UTF-8
    expect_error(load_movielens, other, "items.csv", 5, None)
    with pytest.raises(DataError, match="dataset folder not found"):
        load_movielens(tmp_path / "nowhere")


def test_movielens_any_user_label_and_age_zero(ml_copy):
    """Real user tables have labels outside ML-100K's vocabulary: they load and are counted, age 0 is missing."""
    edit(ml_copy / "users.csv", "1,24,M,technician,85711", "1,0,U,unknown,")
    edit(ml_copy / "users.csv", "2,,F,other,T8H1N", "2,31,X,prompt engineer,T8H1N")
    ml = load_movielens(ml_copy)
    users = ml.users.set_index("user_id")
    assert users.loc["1", "gender"] == "U" and users.loc["1", "occupation"] == "unknown"
    assert users.loc["2", "occupation"] == "prompt engineer" and users.loc["2", "age"] == 31
    assert users["age"].isna().sum() == 3  # user 1 (age 0), 3 (empty) and 9 (no row)
    r = ml.report
    assert r.missing["users.age"] == 3
    assert r.distributions["gender"] == {"(missing)": 2, "U": 1, "X": 1}
    assert r.distributions["occupation"]["prompt engineer"] == 1
    assert any("'U': 1" in n and "'X': 1" in n for n in r.notes), r.notes


def test_movielens_half_stars_no_users_file_no_optional_item_columns(tmp_path):
    """A MovieLens-latest conversion: half-star ratings, no users.csv, items without year and poster columns."""
    root = tmp_path / "latest"
    root.mkdir()
    (root / "items.csv").write_text("item_id,title,genres\n1,Toy Story,Animation|Comedy\n2,Heat,\n", encoding="utf-8")
    (root / "ratings.csv").write_text("user_id,item_id,rating,timestamp\n1,1,4.5,964982703\n1,2,0.5,964982704\n"
                                      "2,1,3,964982705\n", encoding="utf-8")
    ml = load_movielens(root)
    assert ml.ratings["rating"].tolist() == [4.5, 0.5, 3.0]
    assert ml.interactions(threshold=4)["label"].tolist() == [1, 0, 0]
    assert set(ml.users["user_id"]) == {"1", "2"} and ml.users["gender"].isna().all()
    assert ml.report.missing["users.features"] == 2 and ml.report.missing["items.poster"] == 2
    assert ml.report.missing["items.release_year"] == 2
    assert any("no users.csv" in n for n in ml.report.notes)
    edit(root / "ratings.csv", "1,2,0.5,", "1,2,0.25,")
    expect_error(load_movielens, root, "ratings.csv", 2, "rating")


def test_movielens_without_poster_check(ml_copy):
    shutil.rmtree(ml_copy / "posters")
    ml = load_movielens(ml_copy, check_posters=False)
    assert ml.items["poster_path"].notna().sum() == 3


# -------------------------------------------------------------------------------------------- FER2013
@pytest.fixture(scope="module")
def fer_arrays(tmp_path_factory) -> dict[str, np.ndarray]:
    root = samples.write_fer2013_sample(tmp_path_factory.mktemp("fer") / "fer")
    with np.load(root / "fer2013.npz") as z:
        return {k: z[k] for k in z.files}


def save_fer(root: Path, arrays: dict[str, np.ndarray]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root / "fer2013.npz", **arrays)
    return root


def test_fer2013_sample_labels_remapped(fer_arrays, tmp_path):
    fer = load_fer2013(save_fer(tmp_path / "fer", fer_arrays))
    assert fer.images.shape == (42, 48, 48) and fer.images.dtype == np.uint8
    assert fer.original_class_names == samples.FER_CLASS_NAMES
    # FER order angry, disgust, fear, happy, sad, surprise, neutral -> EMOTIONS names
    names = np.asarray(EMOTIONS)[fer.labels]
    fer_names = np.asarray(samples.FER_CLASS_NAMES)[fer.original_labels]
    mapping = dict(zip(fer_names, names))
    assert mapping == {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy",
                       "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
    x, y = fer.subset("val")
    assert x.shape == (14, 48, 48) and y.dtype == np.int64
    assert fer.report.counts == {"images": 42, "train": 14, "val": 14, "test": 14}


def _fer_variant(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    a = dict(arrays)
    if name == "no_split":
        del a["split"]
    elif name == "small_images":
        a["images"] = a["images"][:, :32, :32]
    elif name == "float_images":
        a["images"] = a["images"].astype(np.float32)
    elif name == "short_labels":
        a["labels"] = a["labels"][:-1]
    elif name == "label_out_of_range":
        a["labels"] = a["labels"].copy()
        a["labels"][5] = 7
    elif name == "bad_split":
        a["split"] = a["split"].astype("<U10")
        a["split"][3] = "validation"
    elif name == "unknown_class":
        a["class_names"] = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "bored"])
    return a


@pytest.mark.parametrize("variant,row,field", [
    ("no_split", None, "split"),
    ("small_images", None, "images"),
    ("float_images", None, "images"),
    ("short_labels", None, "labels"),
    ("label_out_of_range", 6, "labels"),
    ("bad_split", 4, "split"),
    ("unknown_class", None, "class_names"),
])
def test_fer2013_rejects_broken_copy(fer_arrays, tmp_path, variant, row, field):
    root = save_fer(tmp_path / "fer", _fer_variant(fer_arrays, variant))
    expect_error(load_fer2013, root, "fer2013.npz", row, field)


def test_fer2013_rejects_non_npz_and_missing_file(tmp_path):
    (tmp_path / "fer2013.npz").write_bytes(b"this is not a zip archive")
    err = expect_error(load_fer2013, tmp_path, "fer2013.npz", None, None)
    assert ".npz" in str(err)
    (tmp_path / "fer2013.npz").unlink()
    expect_error(load_fer2013, tmp_path, "fer2013.npz", None, None)


# ----------------------------------------------------------------------------------------------- MELD
@pytest.fixture(scope="module")
def meld_sample(tmp_path_factory) -> Path:
    return samples.write_meld_sample(tmp_path_factory.mktemp("meld") / "meld")


@pytest.fixture
def meld_copy(meld_sample, tmp_path) -> Path:
    return Path(shutil.copytree(meld_sample, tmp_path / "meld"))


def test_meld_sample_loads_crlf_and_curly_quotes(meld_sample):
    assert b"\r\n" in (meld_sample / "train_sent_emo.csv").read_bytes()
    meld = load_meld(meld_sample)
    assert (len(meld.train), len(meld.dev), len(meld.test)) == (7, 3, 4)
    row = meld.train.iloc[0]
    assert row["utterance"] == "It\u2019s line 0 of \u201ctrain\u201d, isn\u2019t it\u2026"  # as in the file
    assert row["text"] == "It's line 0 of \"train\", isn't it..."
    assert not meld.train["utterance"].str.contains("\r").any()
    assert row["sample_id"] == "train/dia0_utt0"
    assert [EMOTIONS[i] for i in meld.train["label"]] == meld.train["emotion"].tolist()
    assert meld.train["start_s"].iloc[0] == pytest.approx(16 * 60 + 10.059)
    assert meld.report.distributions["train.emotion"] == dict.fromkeys(sorted(EMOTIONS), 1)
    samples_dev = meld.samples("dev")
    assert samples_dev[1].emotion == "joy" and samples_dev[1].text.startswith("It's line 1")


def test_plain_text():
    assert plain_text("\u2018a\u2019 \u201cb\u201d c\u2014d\u2026 ") == "'a' \"b\" c-d..."


MELD_BROKEN = [
    ("dev_sent_emo.csv", ",joy,positive,", ",happy,positive,", 2, "Emotion"),
    ("train_sent_emo.csv", ",anger,negative,", ",anger,angry,", 4, "Sentiment"),
    ("test_sent_emo.csv", ",joy,positive,0,1,", ",joy,positive,one,1,", 2, "Dialogue_ID"),
    ("train_sent_emo.csv", ",joy,positive,0,1,", ",joy,positive,0,0,", 2, "Utterance_ID"),  # dia0_utt0 twice
    ("train_sent_emo.csv", '"00:16:12,059"', '"16 min"', 3, "StartTime"),
    ("train_sent_emo.csv", "Sentiment,", "Feeling,", None, "Sentiment"),
    ("dev_sent_emo.csv", '"It\u2019s line 2 of \u201cdev\u201d, isn\u2019t it\u2026"', '" "', 3, "Utterance"),
]


@pytest.mark.parametrize("file,old,new,row,field", MELD_BROKEN)
def test_meld_rejects_broken_copy(meld_copy, file, old, new, row, field):
    edit(meld_copy / file, old, new)
    expect_error(load_meld, meld_copy, file, row, field)


def test_meld_optional_columns_and_missing_split(meld_copy):
    keep = ["Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"]
    for split in ("train", "dev", "test"):
        path = meld_copy / f"{split}_sent_emo.csv"
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=keep, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    meld = load_meld(meld_copy)
    assert "season" not in meld.train.columns and len(meld.train) == 7
    assert meld.report.missing["train.Season"] == 7 and meld.report.missing["test.EndTime"] == 4
    (meld_copy / "dev_sent_emo.csv").unlink()
    expect_error(load_meld, meld_copy, "dev_sent_emo.csv", None, None)


# ------------------------------------------------------------------------------------------- CLINC150
@pytest.fixture
def clinc_copy(tmp_path) -> Path:
    return samples.write_clinc150_sample(tmp_path / "clinc")


def test_clinc150_sample_loads(clinc_copy):
    c = load_clinc150(clinc_copy)
    assert c.intents == ("balance", "transfer", "weather")
    assert c.label_names[-1] == "oos"
    assert (len(c.train), len(c.val), len(c.test), len(c.oos_test)) == (9, 3, 6, 2)
    test = c.split("test", with_oos=True)
    assert len(test) == 8 and test["label"].iloc[-1] == 3
    assert c.train.set_index("intent")["domain"].to_dict() == {"balance": "banking", "transfer": "banking",
                                                                 "weather": "utility"}
    assert c.test["domain"].notna().all() and test["domain"].iloc[-1] is None
    assert c.report.counts["intents"] == 3 and c.report.missing["intents_without_domain"] == 0


def _rewrite_clinc(root: Path, change) -> None:
    path = root / "data_full.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("change,row,field", [
    (lambda d: d["train"].__setitem__(1, ["only text"]), 2, "train"),
    (lambda d: d["val"].__setitem__(0, ["text", 3]), 1, "val"),
    (lambda d: d["test"].__setitem__(2, ["   ", "balance"]), 3, "test"),
    (lambda d: d["train"].__setitem__(4, ["text", "oos"]), 5, "train"),
    (lambda d: d["oos_val"].__setitem__(0, ["text", "balance"]), 1, "oos_val"),
    (lambda d: d["test"].__setitem__(5, ["text", "play_music"]), 6, "test"),  # intent not in train
    (lambda d: d.pop("val"), None, "val"),
    (lambda d: d.__setitem__("train", {"a": 1}), None, "train"),
])
def test_clinc150_rejects_broken_copy(clinc_copy, change, row, field):
    _rewrite_clinc(clinc_copy, change)
    expect_error(load_clinc150, clinc_copy, "data_full.json", row, field)


def test_clinc150_bad_json_and_domains(clinc_copy):
    (clinc_copy / "domains.json").write_text(json.dumps({"banking": ["balance", "refund"]}), encoding="utf-8")
    expect_error(load_clinc150, clinc_copy, "domains.json", None, "banking")
    (clinc_copy / "domains.json").unlink()
    c = load_clinc150(clinc_copy)  # domains are optional
    assert c.domains is None and c.report.missing["intents_without_domain"] == 3
    (clinc_copy / "data_full.json").write_text('{"train": [["a", "b"],', encoding="utf-8")
    err = expect_error(load_clinc150, clinc_copy, "data_full.json", None, None)
    assert "not valid JSON" in str(err)


# -------------------------------------------------------------------------------------------- catalog
def test_catalog_from_movielens(ml_sample):
    assert detect_format(ml_sample) == "movielens"
    items = load_catalog(ml_sample)
    assert list(items.columns[:5]) == ["item_id", "title", "text", "tags", "image_path"]
    first = items.iloc[0]
    assert first["tags"][0] == {"text": "Animation", "lang": "en"}
    assert first["text"] == "Toy Story. Animation, Children's, Comedy"
    assert items["image_path"].isna().sum() == 1


def test_catalog_from_world(tmp_path):
    root = samples.write_world_catalog_sample(tmp_path / "world")
    cat = read_catalog(root)
    assert cat.format == "world"
    items = cat.items.set_index("item_id")
    assert items.loc["i0", "tags"] == [{"text": "cat", "lang": "en"}, {"text": "猫", "lang": "ja"}]
    assert items.loc["i0", "title_ja"] == "夕暮れの猫" and items.loc["i2", "image_path"] is None
    assert items.loc["i2", "tags"] == [] and items.loc["i2", "text"] == "Untitled"
    assert cat.report.missing == {"items.title": 0, "items.tags": 1, "items.image": 1}
    assert cat.report.distributions["tag_language"] == {"en": 2, "ja": 1}


@pytest.mark.parametrize("old,new,row,field", [
    ('""lang"": ""ja""', '""lang"": ""j""', 1, "tags"),          # language code too short
    ('[{""text"": ""robot""', '[{""txt"": ""robot""', 2, "tags"),  # no text
    ('""robot"", ""lang"": ""en""}]', '""robot"", ""lang"": ""en""}', 2, "tags"),  # not JSON
    ("images/i1.png", "images/i9.png", 2, "image"),
    ("i2,Untitled", "i0,Untitled", 3, "item_id"),
    ("item_id,title,title_ja,title_zh,tags", "item_id,title,title_ja,title_zh,labels", None, None),
])
def test_catalog_rejects_broken_world(tmp_path, old, new, row, field):
    root = samples.write_world_catalog_sample(tmp_path / "world")
    edit(root / "items.csv", old, new)
    expect_error(load_catalog, root, "items.csv", row, field)


def test_catalog_loads_a_generated_world(tiny_world):
    cat = read_catalog(tiny_world)
    assert cat.format == "world" and len(cat.items) > 0
    assert cat.items["item_id"].is_unique
    assert cat.items["image_path"].notna().all()
    assert all(tag["text"] and tag["lang"] for tags in cat.items["tags"] for tag in tags)


# ---------------------------------------------------------------------------------- the real datasets
@pytest.mark.datasets
def test_real_movielens_counts():
    ml = load_movielens(dataset_dir("movielens-100k"))
    assert ml.report.counts["ratings"] == 100000
    assert ml.report.counts["users"] == 943 and ml.report.counts["items"] == 1682
    assert ml.report.counts["items_with_poster"] == 1667
    assert ml.report.missing["items.release_year"] == 1 and ml.report.missing["items.poster"] == 15
    assert ml.report.distributions["genres"]["Drama"] == 725
    assert len(ml.report.distributions["genres"]) == 19
    assert ml.items.set_index("item_id").loc["267", "title"] == "unknown"


@pytest.fixture(scope="module")
def real_fer():
    return load_fer2013(dataset_dir("fer2013"))


@pytest.mark.datasets
def test_real_fer2013_counts(real_fer):
    fer = real_fer
    assert fer.report.counts == {"images": 27883, "train": 20705, "val": 3589, "test": 3589}
    train = fer.report.distributions["train.emotion"]
    # README, FER names: angry 2881, disgust 314, fear 2955, happy 5204, sad 3483, surprise 2287, neutral 3581
    assert train == {"joy": 5204, "neutral": 3581, "sadness": 3483, "fear": 2955, "anger": 2881,
                     "surprise": 2287, "disgust": 314}
    assert fer.report.distributions["test.emotion"]["disgust"] == 55


@pytest.mark.datasets
def test_real_meld_counts():
    meld = load_meld(dataset_dir("meld"))
    assert (len(meld.train), len(meld.dev), len(meld.test)) == (9989, 1109, 2610)
    c = meld.report.counts
    assert (c["train.dialogues"], c["train.speakers"]) == (1038, 260)
    assert meld.report.distributions["train.emotion"]["neutral"] == 4710
    assert meld.report.distributions["test.sentiment"] == {"neutral": 1256, "negative": 833, "positive": 521}
    assert not meld.train["text"].str.contains("\u2019").any()


@pytest.mark.datasets
def test_real_clinc150_counts():
    c = load_clinc150(dataset_dir("clinc150"))
    assert (len(c.train), len(c.val), len(c.test)) == (15000, 3000, 4500)
    assert (len(c.oos_train), len(c.oos_val), len(c.oos_test)) == (100, 100, 1000)
    assert len(c.intents) == 150 and c.report.counts["domains"] == 10
    assert c.train["intent"].value_counts().eq(100).all()


# Broken copies of the real datasets: the same checks fire on real files, with the real row numbers.
def _copy_lines(src: Path, dst: Path, row: int, old: str, new: str) -> None:
    """Copy a CSV, replacing ``old`` by ``new`` in data row ``row`` (header = row 0); keeps CRLF."""
    lines = src.read_bytes().decode("utf-8").split("\n")
    assert old in lines[row], lines[row]
    lines[row] = lines[row].replace(old, new, 1)
    dst.write_bytes("\n".join(lines).encode("utf-8"))


@pytest.mark.datasets
def test_real_movielens_broken_copy(tmp_path):
    src = dataset_dir("movielens-100k")
    for name in ("users.csv", "items.csv"):
        shutil.copy(src / name, tmp_path / name)
    row = 500
    line = (src / "ratings.csv").read_text(encoding="utf-8").splitlines()[row]
    user, item, _, ts = line.split(",")
    _copy_lines(src / "ratings.csv", tmp_path / "ratings.csv", row, line, f"{user},{item},6,{ts}")
    expect_error(lambda d: load_movielens(d, check_posters=False), tmp_path, "ratings.csv", row, "rating")


@pytest.mark.datasets
def test_real_meld_broken_copy(tmp_path):
    src = dataset_dir("meld")
    for split in ("train", "test"):
        shutil.copy(src / f"{split}_sent_emo.csv", tmp_path)
    with open(src / "dev_sent_emo.csv", newline="", encoding="utf-8") as f:
        record = list(csv.DictReader(f))[99]  # data row 100
    old = f",{record['Emotion']},{record['Sentiment']},{record['Dialogue_ID']},"
    _copy_lines(src / "dev_sent_emo.csv", tmp_path / "dev_sent_emo.csv", 100, old,
                f",happiness,{record['Sentiment']},{record['Dialogue_ID']},")
    expect_error(load_meld, tmp_path, "dev_sent_emo.csv", 100, "Emotion")


@pytest.mark.datasets
def test_real_clinc150_broken_copy(tmp_path):
    src = dataset_dir("clinc150")
    shutil.copy(src / "domains.json", tmp_path)
    data = json.loads((src / "data_full.json").read_text(encoding="utf-8"))
    data["test"][41] = [data["test"][41][0]]  # pair 42 loses its intent
    (tmp_path / "data_full.json").write_text(json.dumps(data), encoding="utf-8")
    expect_error(load_clinc150, tmp_path, "data_full.json", 42, "test")


@pytest.mark.datasets
def test_real_fer2013_broken_copy(real_fer, tmp_path):
    n = 300
    labels = real_fer.original_labels[:n].copy()
    labels[123] = 9
    save_fer(tmp_path, {"images": real_fer.images[:n], "labels": labels, "split": real_fer.split[:n],
                        "class_names": np.array(real_fer.original_class_names)})
    expect_error(load_fer2013, tmp_path, "fer2013.npz", 124, "labels")
