"""Context-aware rating sets: the loader (``aigcrec.data.context``), the ranker's context fields and the benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aigcrec.cli.main import app
from aigcrec.data import samples
from aigcrec.data.context import load_context
from aigcrec.data.errors import DataError
from conftest import dataset_dir
from test_data_loaders import edit, expect_error

runner = CliRunner()


@pytest.fixture(scope="module")
def ctx_sample(tmp_path_factory) -> Path:
    return samples.write_context_sample(tmp_path_factory.mktemp("ctx") / "ctx")


@pytest.fixture
def ctx_copy(ctx_sample, tmp_path) -> Path:
    return Path(shutil.copytree(ctx_sample, tmp_path / "ctx"))


# ------------------------------------------------------------------------------------------ loader
def test_context_sample_loads_missing_values_counted(ctx_sample):
    c = load_context(ctx_sample)
    assert c.context_columns == ["mood", "purpose", "temperature"]
    r = c.ratings
    assert r["user_id"].tolist()[:4] == ["A1", "A1", "A1", "b2"]  # string ids as in the file
    assert r["rating"].tolist()[4] == 3.5 and r["rating"].dtype == np.float64
    assert r["mood"].tolist()[3:5] == ["happy", None] and np.isnan(r["temperature"].iloc[1])
    assert r["temperature"].iloc[5] == -3.0 and np.isnan(r["timestamp"].iloc[3])
    assert c.items.set_index("item_id").loc["tt2", "title"] == "Party, All Night"
    assert c.items.set_index("item_id").loc["t3", "genres"] == [] and "artist" in c.items
    users = c.users.set_index("user_id")
    assert users.loc["b2", "gender"] == "U" and users.loc["z9"].isna().all()  # z9 only rates
    rep = c.report
    assert rep.counts["duplicate_rows"] == 1 and rep.counts["users_only_in_ratings"] == 1
    assert rep.missing["ratings.mood"] == 2 and rep.missing["ratings.temperature"] == 4
    assert rep.missing["ratings.no_context"] == 1
    assert rep.distributions["context.purpose"] == {"relax": 2, "work": 2, "party": 3, "(missing)": 3}
    assert c.default_threshold() == 4.0
    assert not any("declares" in n for n in rep.notes), rep.notes


def test_context_without_users_file_and_stale_counts(ctx_copy):
    (ctx_copy / "users.csv").unlink()
    edit(ctx_copy / "context.json", '"ratings": 10', '"ratings": 11')
    c = load_context(ctx_copy)
    assert len(c.users) == 4 and list(c.users.columns) == ["user_id"]
    assert any("no users.csv" in n for n in c.report.notes)
    assert any("declares 11 ratings" in n for n in c.report.notes)


CTX_BROKEN = [
    # (file to edit, old, new, file named, row, field)
    ("ratings.csv", "A1,tt2,2,", "A1,tt2,7,", "ratings.csv", 2, "rating"),  # outside rating_scale
    ("ratings.csv", "A1,tt2,2,", "A1,tt2,two,", "ratings.csv", 2, "rating"),
    ("ratings.csv", "b2,t1,1,", "b2,t1,,", "ratings.csv", 4, "rating"),
    ("ratings.csv", "b2,t1,1,", ",t1,1,", "ratings.csv", 4, "user_id"),
    ("ratings.csv", "b2,t4,4,", "b2,t9,4,", "ratings.csv", 6, "item_id"),  # not in items.csv
    ("ratings.csv", "c3,t4,2,,sad", "c3,t4,2,,angry", "ratings.csv", 7, "mood"),  # outside the codebook
    ("ratings.csv", "happy,work,-3", "happy,work,cold", "ratings.csv", 6, "temperature"),
    ("ratings.csv", "happy,work,-3", "happy,work,99", "ratings.csv", 6, "temperature"),  # outside range
    ("ratings.csv", "881250950", "8812.5", "ratings.csv", 2, "timestamp"),
    ("ratings.csv", "mood,purpose,temperature\n", "mood,purpose,temp\n", "ratings.csv", None, "temperature"),
    ("ratings.csv", "A1,t1,5,881250949,sad,relax,12.5", "A1,t1,5,881250949,sad,relax", "ratings.csv", 1, None),
    ("items.csv", "t4,Deadline", "t1,Deadline", "items.csv", 4, "item_id"),
    ("items.csv", "Ambient|Jazz", "Ambient||Jazz", "items.csv", 1, "genres"),
    ("users.csv", "c3,,", "A1,,", "users.csv", 3, "user_id"),
    ("context.json", '"type": "numeric"', '"type": "number"', "context.json", None, "context.temperature.type"),
    ("context.json", '"kind": "mood"', '"kind": "feeling"', "context.json", None, "context.mood.kind"),
    ("context.json", '"values": [\n    "happy",\n    "sad"\n   ]', '"values": []', "context.json", None,
     "context.mood"),
    ("context.json", '"rating_scale": [\n  1,\n  5\n ]', '"rating_scale": [5, 1]', "context.json", None, None),
    ("context.json", '"name": "context-sample",', '', "context.json", None, "name"),
]


@pytest.mark.parametrize("file,old,new,named,row,field", CTX_BROKEN)
def test_context_rejects_broken_copy(ctx_copy, file, old, new, named, row, field):
    edit(ctx_copy / file, old, new)
    expect_error(load_context, ctx_copy, named, row, field)


def test_context_undeclared_column_and_bad_json(ctx_copy):
    edit(ctx_copy / "ratings.csv", "temperature\n", "temperature,weather\n")
    text = (ctx_copy / "ratings.csv").read_text(encoding="utf-8").splitlines()
    (ctx_copy / "ratings.csv").write_text("\n".join([text[0]] + [t + ",x" for t in text[1:]]) + "\n", encoding="utf-8")
    err = expect_error(load_context, ctx_copy, "ratings.csv", None, "weather")
    assert "not declared in context.json" in str(err)
    (ctx_copy / "context.json").write_text('{"name": "x",', encoding="utf-8")
    expect_error(load_context, ctx_copy, "context.json", 1, None)
    (ctx_copy / "context.json").unlink()
    with pytest.raises(DataError, match="file not found"):
        load_context(ctx_copy)


STAGED = {  # name -> (ratings, users, items, context columns)
    "tripadvisor-v2": (14175, 2371, 2269, ["trip_type"]),
    "depaulmovie": (5043, 97, 79, ["time", "location", "companion"]),
    "incarmusic": (4012, 42, 139, ["driving_style", "landscape", "mood", "natural_phenomena", "road_type",
                                   "sleepiness", "traffic_conditions", "weather"]),
}


@pytest.mark.parametrize("name", sorted(STAGED))
def test_staged_context_sets_validate(name):
    root = dataset_dir(name)
    result = runner.invoke(app, ["data", "validate", "--format", "context", str(root)])
    assert result.exit_code == 0, result.output
    c = load_context(root)
    n_ratings, n_users, n_items, cols = STAGED[name]
    assert (len(c.ratings), c.ratings["user_id"].nunique(), len(c.items)) == (n_ratings, n_users, n_items)
    assert c.context_columns == cols
    declared = json.loads((root / "context.json").read_text(encoding="utf-8"))["context"]
    for col in cols:  # every declared missing count agrees with the file
        assert c.report.missing[f"ratings.{col}"] == declared[col]["missing"]
