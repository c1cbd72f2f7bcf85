"""The user's content profile: the history field reads only earlier training positives, follows the
modalities a variant uses, and is what a saved ranker serves with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aigcrec.ranking.bundle import RankerBundle
from aigcrec.ranking.data import add_history, latest_histories, warm_split
from aigcrec.ranking.experiment import variant_config
from aigcrec.ranking.models import ROWS_SUFFIX, build_model
from aigcrec.ranking.trainer import make_batch, to_tensors, with_profiles
from test_ranking_models import SMALL, data, prep, trained  # noqa: F401  (module-scoped fixtures)


def test_history_holds_only_earlier_training_positives():
    frame = pd.DataFrame({
        "user_id": ["u"] * 7 + ["v"],
        "item_id": ["a", "b", "c", "d", "e", "f", "g", "a"],
        "label": [1, 0, 1, 1, 1, 1, 1, 1],
        "timestamp": [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0, 1.0],
    })
    train = np.array([0, 1, 2, 3, 4, 7])  # rows 5 and 6 (u's last two) are validation / test
    out = add_history(frame, train, max_len=2)["history"].tolist()
    assert out[0] == []  # nothing before the first row
    assert out[1] == ["a"]  # a negative is not history
    assert out[2] == ["a"] and out[3] == ["a"]  # its own label and the same second's are not read
    assert out[4] == ["c", "d"]  # the two most recent
    assert out[5] == ["d", "e"] and out[6] == ["d", "e"]  # held-out rows: training labels only (f is not)
    assert out[7] == []  # another user's positives are not read
    assert latest_histories(frame.iloc[train], max_len=3) == {"u": ["c", "d", "e"], "v": ["a"]}


def test_history_profile_is_the_mean_of_the_items_rows(prep, trained):  # noqa: F811
    model = trained.model
    assert model.history_keys == ["history:e_sem", "history:e_sty", "history:e_tsem"]
    frame = prep.data.frame.iloc[prep.rows["test"][:3]]
    enc = prep.spec.encode(frame)
    ids = enc.vec_idx["history:e_sty"]
    assert [int((r > 0).sum()) for r in ids] == [len(h) for h in frame["history"]]
    table = prep.tables["e_sty"]
    got = model.history_profile("history:e_sty", torch.from_numpy(ids.copy())).numpy()
    want = np.stack([table[r[r > 0]].mean(0) for r in ids])
    assert np.allclose(got, want, atol=1e-6)
    # training reads table rows (items projected once, histories pooled after projection, or the profiles
    # precomputed per distinct history), serving vectors and raw means: the same profiles and scores each way
    rows = make_batch(model, to_tensors(enc))
    means = serving_batch(model, rows)
    assert any(k.endswith(ROWS_SUFFIX) for k in rows) and not any(k.endswith(ROWS_SUFFIX) for k in means)
    cached = make_batch(model, with_profiles(model, to_tensors(enc)))
    assert all(k in cached and f"{k}{ROWS_SUFFIX}" not in cached for k in model.history_keys)
    model.eval()
    with torch.no_grad():
        for a, b, c in zip(model.profiles(rows), model.profiles(means), model.profiles(cached)):
            assert torch.allclose(a, b, atol=1e-5) and torch.allclose(c, b, atol=1e-5)
        assert torch.allclose(model(rows), model(means), atol=1e-5)
        assert torch.allclose(model(cached), model(means), atol=1e-5)


def serving_batch(model, rows: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A training batch (table rows) as serving passes it: each modality's vectors and each raw profile."""
    out = {k: v for k, v in rows.items() if not k.endswith(ROWS_SUFFIX)}
    out.update({f.name: model.tables[f.name](rows[f.name + ROWS_SUFFIX]) for f in model.modalities})
    out.update({k: model.history_profile(k, rows[k + ROWS_SUFFIX]) for k in model.history_keys})
    return out


def test_precomputed_profiles_hold_each_distinct_history_once(prep, trained):  # noqa: F811
    model = trained.model
    data = to_tensors(prep.parts["train"])
    cached = with_profiles(model, data)
    key = "history:e_sem"
    distinct = np.unique(prep.parts["train"].vec_idx[key], axis=0)
    assert cached[f"profile:{key}"].shape == (len(distinct), prep.tables["e_sem"].shape[1])
    assert f"idx:{key}" not in cached and cached[f"state:{key}"].shape == (len(prep.parts["train"]),)
    rows = torch.arange(0, len(prep.parts["train"]), 7)
    a, b = make_batch(model, cached, rows), make_batch(model, data, rows)
    assert torch.allclose(a[key], model.history_profile(key, b[key + ROWS_SUFFIX]), atol=1e-6)
    assert with_profiles(model, data, budget_mb=0.0) is data  # over the budget: pooled per batch


def test_ablations_drop_the_profile_of_the_modality_they_drop(prep):  # noqa: F811
    keys = {}
    for name in ("umair_fps", "umair_fps_no_style", "umair_fps_no_visual", "umair_fps_no_history", "dcnv2"):
        kind, cfg = variant_config(name, SMALL)
        keys[name] = build_model(kind, prep.spec, cfg, prep.tables).history_keys
    assert keys["umair_fps_no_style"] == ["history:e_sem", "history:e_tsem"]
    assert keys["umair_fps_no_visual"] == ["history:e_tsem"]
    assert keys["umair_fps_no_history"] == [] and keys["dcnv2"] == []
    assert "history" not in {f.name for f in prep.spec.tabular_only().fields}


def test_a_saved_ranker_serves_with_the_users_last_training_positives(tmp_path, prep, trained):  # noqa: F811
    train = prep.data.frame.iloc[prep.rows["train"]]
    bundle = RankerBundle.from_training("umair_fps", trained.model, train)
    again = RankerBundle.load(bundle.save(tmp_path / "r"))
    last = latest_histories(train, 5)
    stored = dict(zip(again.users["user_id"], again.users["history"]))
    assert stored["u1"] == "|".join(last["u1"]) and len(last["u1"]) == 5
    batch = again.encode_request("u1", ["i1", "i2"])
    rows = np.array([prep.spec.state["e_sem"]["keys"][i] for i in last["u1"]])
    want = prep.tables["e_sem"][rows].mean(0)
    assert np.allclose(batch["history:e_sem"].numpy(), np.stack([want, want]), atol=1e-6)
    # a user the ranker never saw has no history: zero profiles
    assert float(again.encode_request("nobody", ["i1"])["history:e_sem"].abs().sum()) == 0.0
    # the profile changes the score: the same items for u1 with and without its history
    with torch.no_grad():
        empty = {**batch, **{k: torch.zeros_like(batch[k]) for k in again.model.history_keys}}
        assert not torch.allclose(again.model(batch), again.model(empty))


def test_prepare_fills_history_from_the_training_rows(data):  # noqa: F811
    rows = warm_split(data.frame)
    from aigcrec.ranking.experiment import prepare

    p = prepare(data, rows)
    assert "history" not in data.frame.columns  # the caller's frame is left as it was
    want = add_history(data.frame, rows["train"], 5)["history"]
    assert p.data.frame["history"].tolist() == want.tolist()


def test_live_history_replaces_the_stored_one(prep, trained):  # noqa: F811
    train = prep.data.frame.iloc[prep.rows["train"]]
    bundle = RankerBundle.from_training("umair_fps", trained.model, train)
    last = latest_histories(train, 5)["u1"]
    items = ["i1", "i2", "i3"]
    stored, _, _ = bundle.score("u1", items)
    same, _, _ = bundle.score("u1", items, history=["i0"] + last)  # only the last max_len (5) count
    assert np.allclose(stored, same, atol=1e-6)
    # an item posted after training: its vectors come with the history
    feats = {"e_sem": np.ones((2, 5)), "e_sty": np.full((2, 4), 3.0), "e_tsem": np.zeros((2, 3))}
    live, _, _ = bundle.score("u1", items, history=[last[-1], "posted-later"], history_features=feats)
    other, _, _ = bundle.score("u1", items, history=[last[-1], "posted-later"],
                               history_features={**feats, "e_sty": -feats["e_sty"]})
    assert not np.allclose(live, other)
    batch = bundle.encode_request("u1", items, history=[last[-1], "posted-later"], history_features=feats)
    sty = prep.spec.state["e_sty"]
    new_row = (3.0 - np.asarray(sty["mean"])) / np.asarray(sty["std"])
    want = (prep.tables["e_sty"][sty["keys"][last[-1]]] + new_row) / 2
    assert np.allclose(batch["history:e_sty"][0].numpy(), want, atol=1e-5)
    # ONNX serving reads the same live profile
    onnx = RankerBundle.from_training("umair_fps", trained.model, train).use_onnx()
    got, _, _ = onnx.score("u1", items, history=[last[-1], "posted-later"], history_features=feats)
    assert np.allclose(got, live, atol=1e-5)
    with pytest.raises(ValueError, match=r"history_features\['e_sty'\]: expected shape \(2, 4\)"):
        bundle.score("u1", items, history=["a", "b"], history_features={"e_sty": np.ones((1, 4))})


def test_a_ranker_saved_before_the_profile_still_loads(tmp_path, prep):  # noqa: F811
    """Format 1 bundles (no history field, no match terms in the config) rebuild the model they saved."""
    import json

    old_cfg = SMALL.model_copy(update={"use_history": False, "match": False})
    spec = prep.spec.without({"history"})
    model = build_model("umair_fps", spec, old_cfg, prep.tables)
    train = prep.data.frame.iloc[prep.rows["train"]]
    path = RankerBundle.from_training("umair_fps", model, train).save(tmp_path / "old")
    info = json.loads((path / "config.json").read_text())
    assert (info.pop("component"), info.pop("format")) == ("ranker", 3)
    for key in ("use_history", "match"):
        del info["model_config"][key]
    info["format_version"] = 1  # as format 1 bundles were saved: ranker.json, no aigcrec.saved header
    (path / "config.json").unlink()
    (path / "ranker.json").write_text(json.dumps(info))
    again = RankerBundle.load(path)
    assert not again.model.cfg.match and again.model.history_keys == []
    s1, _, _ = again.score("u1", ["i1", "i2"])
    s0, _, _ = RankerBundle.from_training("umair_fps", model, train).score("u1", ["i1", "i2"])
    assert np.allclose(s0, s1, atol=1e-6)


def test_live_profile_mixes_known_rows_and_new_vectors_in_any_order(prep, trained):  # noqa: F811
    """h = mean(table rows of the known history items, prepared vectors of the new ones), last max_len only."""
    train = prep.data.frame.iloc[prep.rows["train"]]
    bundle = RankerBundle.from_training("umair_fps", trained.model, train)
    sty = prep.spec.state["e_sty"]
    known = [i for i in sty["keys"] if sty["keys"][i]][:3]
    history = ["dropped", known[0], "new-a", known[1], known[2], "new-b"]  # max_len 5: the first is dropped
    given = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    got = bundle._live_profile("history:e_sty", history, {"e_sty": given})
    mean, std = np.asarray(sty["mean"]), np.asarray(sty["std"])
    rows = [prep.tables["e_sty"][sty["keys"][k]] for k in known] + [(given[j] - mean) / std for j in (2, 5)]
    assert got.shape == (1, 4) and np.allclose(got[0].numpy(), np.mean(rows, axis=0), atol=1e-5)
    assert torch.equal(bundle._live_profile("history:e_sty", ["new-a"], None), torch.zeros(1, 4))
