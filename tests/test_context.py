"""Context-aware rating sets: the loader (``aigcrec.data.context``), the ranker's context fields and the benchmark."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
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
    assert c.labels().tolist() == [1, 0, 1, 0, 0, 1, 0, 0, 1, 0]  # rating >= 4: 3.5 is not, 4 is
    assert c.labels(3.5).tolist() == [1, 0, 1, 0, 1, 1, 0, 0, 1, 0]
    with pytest.raises(ValueError, match=r"threshold: expected a rating in \(1, 5\], got 1"):
        c.labels(1)
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


# ------------------------------------------------------------------------------------------ ranker
from aigcrec.ranking.bundle import RankerBundle  # noqa: E402
from aigcrec.ranking.config import ModelConfig, RankingConfig, TrainConfig  # noqa: E402
from aigcrec.ranking.data import context_dataset, movielens_dataset, random_split  # noqa: E402
from aigcrec.ranking.experiment import prepare, run_variant  # noqa: E402
from aigcrec.ranking.features import MISSING_TOKEN, Field, FeatureSpec  # noqa: E402
from aigcrec.ranking.models import build_model  # noqa: E402
from aigcrec.ranking.trainer import make_batch, to_tensors  # noqa: E402

SMALL = ModelConfig(embedding_dim=4, tower_units=[16, 8], modality_dim=8, low_rank=4, num_experts=2,
                    dnn_units=[8], dropout=0.0, affect_dim=4)
FAST = TrainConfig(batch_size=128, max_epochs=15, patience=3, lr=5e-3)


def write_mood_set(root: Path, n: int = 2400, seed: int = 0, item: str = "t") -> Path:
    """A set in the layout where the rating depends on the rater's mood x the item's group only: happy
    raters like items t0-t9, sad ones t10-t19; a quarter of the rows have no mood, a numeric 'hour' is noise."""
    rng = np.random.default_rng(seed)
    mood = rng.choice(["happy", "sad", ""], size=n, p=[0.375, 0.375, 0.25])
    items = rng.integers(0, 20, n)
    likes = np.where(mood == "happy", items < 10, np.where(mood == "sad", items >= 10, rng.random(n) < 0.5))
    rating = np.clip(np.where(likes, 4.5, 1.5) + rng.normal(0, 0.7, n), 1, 5).round()
    hour = np.where(rng.random(n) < 0.2, "", rng.integers(0, 24, n).astype(str))
    user = rng.integers(0, 40, n)
    schema = {"name": "mood-set", "rating_scale": [1, 5], "context": {
        "mood": {"type": "categorical", "kind": "mood", "values": ["happy", "sad"]},
        "hour": {"type": "numeric", "kind": "situation", "range": [0, 23]}}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "context.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / "items.csv").write_text("item_id,title,genres\n" + "".join(f"{item}{k},,\n" for k in range(20)),
                                    encoding="utf-8")
    lines = ["user_id,item_id,rating,timestamp,mood,hour"]
    lines += [f"u{u},{item}{i},{r:g},,{m},{h}" for u, i, r, m, h in zip(user, items, rating, mood, hour)]
    (root / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def mood_set(tmp_path_factory) -> Path:
    return write_mood_set(tmp_path_factory.mktemp("mood") / "mood")


@pytest.fixture(scope="module")
def mood_prep(mood_set):
    data = context_dataset(mood_set)
    return data, prepare(data, random_split(data.frame, 0))


def test_context_fields_missing_token_and_schema():
    frame = pd.DataFrame({"mood": ["happy", None, "sad", ""], "hour": [3.0, np.nan, 9.0, 6.0]})
    spec = FeatureSpec([Field.context_field("mood", "categorical"), Field.context_field("hour", "numeric")]).fit(frame, {})
    vocab = spec.state["mood"]["vocab"]
    assert MISSING_TOKEN in vocab and vocab[MISSING_TOKEN] > 0  # a missing mood is a token, not unknown
    enc = spec.encode(pd.DataFrame({"mood": [None, "bored", "sad"], "hour": [np.nan, 6.0, 12.0]}))
    assert enc.cat[:, 0].tolist() == [vocab[MISSING_TOKEN], 0, vocab["sad"]]  # unseen label -> unknown 0
    assert enc.num[0, 0] == 0.0 and enc.num[2, 0] == pytest.approx((12 - 6) / np.std([3, 9, 6]))
    assert spec.context_schema() == {"mood": {"kind": "categorical", "values": ["happy", "sad"]},
                                      "hour": {"kind": "numeric", "values": None}}
    with pytest.raises(ValueError, match="context-group field"):
        Field("mood", "categorical", "user", group="context")


def test_umair_reads_the_context_in_the_affect_slot(mood_prep):
    data, prep = mood_prep
    model = build_model("umair_fps", prep.spec, SMALL, prep.tables)
    groups = model.emb.groups
    assert [groups[i] for i in model.context_idx.tolist()] == ["context", "context"]
    assert all(groups[i] is None for i in model.user_idx.tolist())  # not in the user fields: in a
    assert model.affect_proj[0].in_features == 2 * SMALL.embedding_dim and model.match_from == 0
    with_ctx = run_variant(prep, "umair_fps", SMALL, FAST, seed=0).metrics["auc"]
    nc_data = data.__class__(data.name, data.frame, [f for f in data.fields if f.group != "context"], data.vectors)
    without = run_variant(prepare(nc_data, prep.rows), "umair_fps", SMALL, FAST, seed=0).metrics["auc"]
    assert with_ctx > 0.8 and with_ctx > without + 0.15, (with_ctx, without)


def test_umair_fm_cross_adds_the_pairwise_field_term(mood_prep):
    """fm_cross adds Σ_{i<j} <v_i, v_j> over every field embedding (user, item, the context) to the logit."""
    _, prep = mood_prep
    torch.manual_seed(0)
    model = build_model("umair_fps", prep.spec, SMALL.model_copy(update={"fm_cross": True}), prep.tables).eval()
    torch.manual_seed(0)
    plain = build_model("umair_fps", prep.spec, SMALL, prep.tables).eval()
    assert model.fm is not None and plain.fm is None
    with torch.no_grad():
        model.emb.table.weight.normal_(0.0, 0.5)  # visible pairwise products
        plain.load_state_dict(model.state_dict())  # the term has no weights of its own
        batch = make_batch(model, to_tensors(prep.parts["test"]), torch.arange(16))
        e = model.emb(batch)  # (B, F, d)
        pairs = sum((e[:, i] * e[:, j]).sum(-1) for i in range(e.shape[1]) for j in range(i + 1, e.shape[1]))
        assert e.shape[1] == len(prep.spec.fields) - len(prep.spec.vectors)  # user, item, context fields
        torch.testing.assert_close(model(batch) - plain(batch), pairs, rtol=1e-4, atol=1e-5)
    r = run_variant(prep, "umair_fps", SMALL.model_copy(update={"fm_cross": True}), FAST, seed=0)
    assert r.metrics["auc"] > 0.8  # still learns the mood x item signal


def test_fm_cross_ranker_saves_and_exports(mood_prep, tmp_path):
    data, prep = mood_prep
    r = run_variant(prep, "umair_fps", SMALL.model_copy(update={"fm_cross": True}),
                    FAST.model_copy(update={"max_epochs": 2}), seed=0)
    bundle = RankerBundle.from_training("umair_fps", r.model, data.frame.iloc[prep.rows["train"]], {})
    items = [f"t{k}" for k in range(20)]
    scores = bundle.score("u1", items, context={"mood": "happy"})[0]
    bundle.save(tmp_path / "b")
    for runtime in ("torch", "onnx"):  # the saved config rebuilds the term; the ONNX graph has it too
        loaded = RankerBundle.load(tmp_path / "b", runtime=runtime)
        np.testing.assert_allclose(loaded.score("u1", items, context={"mood": "happy"})[0], scores, atol=1e-5)


def test_bundle_records_and_checks_the_context(mood_prep, tmp_path):
    data, prep = mood_prep
    r = run_variant(prep, "umair_fps", SMALL, FAST, seed=0)
    bundle = RankerBundle.from_training("umair_fps", r.model, data.frame.iloc[prep.rows["train"]], {})
    items = [f"t{k}" for k in range(20)]
    happy = bundle.score("u1", items, context={"mood": "happy", "hour": 8})[0]
    sad = bundle.score("u1", items, context={"mood": "sad"})[0]
    assert happy[:10].mean() > happy[10:].mean() + 0.2 and sad[10:].mean() > sad[:10].mean() + 0.2
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['weather'\].*\['hour', 'mood'\]"):
        bundle.score("u1", items, context={"weather": "rainy"})
    bundle.save(tmp_path / "b")
    info = json.loads((tmp_path / "b" / "config.json").read_text(encoding="utf-8"))
    assert info["context"]["mood"] == {"kind": "categorical", "values": ["happy", "sad"]}
    onnx = RankerBundle.load(tmp_path / "b", runtime="onnx")
    np.testing.assert_allclose(onnx.score("u1", items, context={"mood": "happy", "hour": 8})[0], happy, atol=1e-5)
    info["context"]["mood"]["values"] = ["happy", "sad", "calm"]
    (tmp_path / "b" / "config.json").write_text(json.dumps(info), encoding="utf-8")
    with pytest.raises(ValueError, match="context schema"):
        RankerBundle.load(tmp_path / "b")


def test_movielens_with_unknown_labels_trains(tmp_path):
    """The issue's case: a users.csv with gender U, occupation unknown and age 0 validates and trains."""
    root = samples.write_movielens_sample(tmp_path / "ml")
    edit(root / "users.csv", "1,24,M,technician,85711", "1,0,U,unknown,")
    edit(root / "users.csv", "2,,F,other,T8H1N", "2,0,U,unknown,")
    result = runner.invoke(app, ["data", "validate", "--format", "movielens", str(root)])
    assert result.exit_code == 0, result.output
    data = movielens_dataset(root)
    rows = {"train": np.arange(8), "val": np.arange(8), "test": np.arange(8)}
    r = run_variant(prepare(data, rows), "umair_fps", SMALL, TrainConfig(max_epochs=2, batch_size=4), seed=0)
    assert np.isfinite(r.test_probs).all() and len(r.test_probs) == 8


# ------------------------------------------------------------------------------------------ benchmark
def test_context_benchmark_writes_with_and_without(tmp_path):
    from aigcrec.ranking.context_benchmark import run_context_benchmark

    data = context_dataset(write_mood_set(tmp_path / "small", n=800))
    cfg = RankingConfig(model=SMALL, train=FAST.model_copy(update={"max_epochs": 2}))
    res = run_context_benchmark(data, cfg, [0, 1], peers=False, out_dir=tmp_path / "b", threshold=4.0)
    models = res["models"]
    assert set(models) == {"umair_fps", "umair_fps_no_context", "fm", "fm_no_context", "popularity"}
    assert "cold_user_auc_mean" in models["umair_fps"] and len(models["fm"]["runs"]["random"]) == 2
    assert res["signal"]["mood"]["signal"] is False or res["signal"]["mood"]["anova_p"] < 0.025
    pair = res["paired"]["random"]["umair_fps - umair_fps_no_context"]
    with_auc = [r["auc"] for r in models["umair_fps"]["runs"]["random"]]
    without_auc = [r["auc"] for r in models["umair_fps_no_context"]["runs"]["random"]]
    assert pair["seeds"] == 2 and pair["per_seed"] == [round(w - o, 5) for w, o in zip(with_auc, without_auc)]
    assert set(res["lift"]["mood"]) == {"happy", "sad", MISSING_TOKEN}
    per_value = models["umair_fps"]["runs"]["random"][0]["per_value"]["mood"]
    assert sum(n for n, _ in per_value.values()) == round(0.1 * len(data.frame))  # every test row, once
    assert res["checks"]["met"] in (True, False) and "ours_minus_ours_no_context" in res["checks"]
    md = (tmp_path / "b" / "ranking.md").read_text(encoding="utf-8")
    assert "umair_fps_no_context" in md and "Paired t-tests" in md
    again = run_context_benchmark(data, cfg, [0, 1], peers=False, out_dir=tmp_path / "b", threshold=4.0)
    assert again["models"]["fm"]["auc_mean"] == models["fm"]["auc_mean"]  # reused from runs/


def test_context_selection_reads_the_training_rows_only(tmp_path):
    """context_select 'anova' keeps the column with signal in the training rows (mood, not the noise hour),
    records it per seed, and with none kept the run with context is the run without it."""
    from aigcrec.ranking.context_benchmark import run_context_benchmark, select_context

    data = context_dataset(write_mood_set(tmp_path / "small", n=800))
    rows = random_split(data.frame, 0)
    train = data.frame.iloc[rows["train"]]
    assert select_context(train, ["mood", "hour"], "anova") == ["mood"]
    assert select_context(train, ["mood", "hour"], "all") == ["mood", "hour"]
    # the decision follows the rows it is given: a training fold whose mood carries nothing keeps nothing
    flat = train.assign(rating=np.random.default_rng(0).permutation(train["rating"].to_numpy()))
    assert select_context(flat, ["mood", "hour"], "anova") == []
    with pytest.raises(ValueError, match="context_select"):
        select_context(train, ["mood"], "best")
    cfg = RankingConfig(model=SMALL, train=FAST.model_copy(update={"max_epochs": 2}), context_select="anova")
    res = run_context_benchmark(data, cfg, [0], peers=False, out_dir=tmp_path / "b", threshold=4.0,
                                split_names=("random",))
    assert res["context_kept"] == {"random": {"0": ["mood"]}}
    one_way, within = res["context_tests"]["random"]["0"]["mood"]
    assert within < 0.05 / 4 <= one_way  # the mood flips which items are liked: only the within-item test sees it
    assert res["models"]["umair_fps"]["runs"]["random"][0]["context_read"] == ["mood"]
    assert "seed 0: mood" in (tmp_path / "b" / "ranking.md").read_text(encoding="utf-8")
    noise = context_dataset(tmp_path / "small", context=["hour"])
    res = run_context_benchmark(noise, cfg, [0], peers=False, out_dir=tmp_path / "n", threshold=4.0,
                                split_names=("random",))
    assert res["context_kept"] == {"random": {"0": []}}
    m = res["models"]
    assert m["umair_fps"]["auc_mean"] == m["umair_fps_no_context"]["auc_mean"]
    assert m["fm"]["runs"]["random"][0]["context_read"] == ["hour"]  # the others read every column


def test_context_gate_keeps_the_run_with_the_better_validation_auc(tmp_path):
    from aigcrec.ranking.context_benchmark import run_context_benchmark

    data = context_dataset(write_mood_set(tmp_path / "small", n=800))
    cfg = RankingConfig(model=SMALL, train=FAST.model_copy(update={"max_epochs": 2}), context_gate=True)
    res = run_context_benchmark(data, cfg, [0, 1], peers=False, out_dir=tmp_path / "g", threshold=4.0,
                                split_names=("random",))
    m = res["models"]
    for gated, with_run, without_run in zip(*(m[n]["runs"]["random"] for n in
                                              ("umair_fps", "umair_fps_ungated", "umair_fps_no_context"))):
        best = with_run if with_run["val"] >= without_run["val"] else without_run
        assert gated["auc"] == best["auc"] and gated["gate"] == ("with" if best is with_run else "without")
    assert "umair_fps - umair_fps_ungated" in res["paired"]["random"]
    assert "umair_fps_ungated" not in res["checks"]["ours_minus_other_with_context"]
    assert "`context_gate`" in (tmp_path / "g" / "ranking.md").read_text(encoding="utf-8")


def test_context_benchmark_rating_task(mood_set, tmp_path):
    from aigcrec.ranking.context_benchmark import run_context_benchmark

    data = context_dataset(mood_set, context=["mood"])
    cfg = RankingConfig(model=SMALL, train=FAST.model_copy(update={"max_epochs": 4}))
    res = run_context_benchmark(data, cfg, [0], peers=False, out_dir=tmp_path / "r", task="rating",
                                split_names=("random",))
    m = res["models"]
    assert set(m) == {"umair_fps", "umair_fps_no_context", "fm", "fm_no_context"}
    assert 0 < m["umair_fps"]["rmse_mean"] < m["umair_fps_no_context"]["rmse_mean"]
    assert m["fm"]["mae_mean"] > 0 and "checks" not in res


def test_benchmark_cli_rejects_unknown_context_column(mood_set, tmp_path):
    result = runner.invoke(app, ["benchmark", "ranking", "--dataset", "context", "--data-dir", str(mood_set),
                                 "--context", "mood,weather", "--seeds", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "weather" in result.output and "mood" in result.output


# ------------------------------------------------------------------------------------------ service
def test_service_explicit_context_changes_the_list(tmp_path):
    """The same user with two different explicit moods gets two different lists; an unknown key is named."""
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.state import ServiceState
    from aigcrec.service.store import ServiceStore
    from test_service_support import synthetic_catalog

    data = context_dataset(write_mood_set(tmp_path / "mood", item="i"))
    prep = prepare(data, random_split(data.frame, 0))
    r = run_variant(prep, "umair_fps", SMALL, FAST, seed=0)
    bundle = RankerBundle.from_training("umair_fps", r.model, data.frame.iloc[prep.rows["train"]], {})
    items, vectors = synthetic_catalog(20)
    config = ServiceConfig(api_key=None, sqlite_synchronous="FULL")
    state = ServiceState.open(config, ServiceStore(tmp_path / "svc.sqlite", "FULL"), items, vectors, bundle)
    happy = [x.item_id for x in state.pipeline.recommend("u3", 5, context={"mood": "happy"}).items]
    sad = [x.item_id for x in state.pipeline.recommend("u3", 5, context={"mood": "sad"}).items]
    assert happy != sad
    assert sum(int(i[1:]) < 10 for i in happy) > sum(int(i[1:]) < 10 for i in sad)  # happy raters like i0-i9
    with pytest.raises(ValueError, match=r"\['weather'\].*\['hour', 'mood'\]"):
        state.pipeline.recommend("u3", 5, context={"weather": "rainy"})
    # through HTTP: /v1/recommend takes the context beside the signals; an unknown key is a 422 naming both
    from fastapi.testclient import TestClient

    from aigcrec.service.app import create_app

    with TestClient(create_app(state)) as client:
        lists = {}
        for mood in ("happy", "sad"):
            r = client.post("/v1/recommend", json={"user_id": "u3", "k": 5, "context": {"mood": mood}})
            assert r.status_code == 200, r.text
            lists[mood] = [i["item_id"] for i in r.json()["items"]]
        assert lists == {"happy": happy, "sad": sad}
        r = client.post("/v1/recommend", json={"user_id": "u3", "k": 5, "context": {"weather": "rainy"}})
        assert r.status_code == 422 and "weather" in r.text and "mood" in r.text
        r = client.post("/v1/recommend", content=b'{"user_id": "u3", "context": {"mood": "\\ud800"}}',
                        headers={"content-type": "application/json"})  # a lone surrogate, escaped in JSON
        assert r.status_code == 422


def test_train_and_evaluate_ranker_cli_on_a_context_set(mood_set, tmp_path):
    cfg = tmp_path / "fast.yaml"
    cfg.write_text("ranking:\n  train:\n    max_epochs: 1\n", encoding="utf-8")
    common = ["--dataset", "context", "--data-dir", str(mood_set), "--context", "mood", "--config", str(cfg)]
    result = runner.invoke(app, ["train", "ranker", *common, "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    bundle = RankerBundle.load(tmp_path / "t" / "ranker")
    assert list(bundle.context_schema) == ["mood"]
    result = runner.invoke(app, ["evaluate", "ranker", "--ranker", str(tmp_path / "t" / "ranker"), *common,
                                 "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    train_auc = json.loads((tmp_path / "t" / "metrics.json").read_text(encoding="utf-8"))["auc"]
    eval_auc = json.loads((tmp_path / "e" / "metrics.json").read_text(encoding="utf-8"))["auc"]
    assert eval_auc == pytest.approx(train_auc, abs=1e-6)  # the same random split of the seed
