"""The serving runtime of a ranker: ONNX Runtime scores equal eager torch on every request shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aigcrec.ranking.bundle import RankerBundle, _StackCache
from test_ranking_models import data, prep, trained  # noqa: F401  (module-scoped fixtures)


def test_onnx_runtime_scores_equal_torch(prep, trained):  # noqa: F811
    frame = prep.data.frame.iloc[prep.rows["train"]]
    eager = RankerBundle.from_training("umair_fps", trained.model, frame)
    fast = RankerBundle.from_training("umair_fps", trained.model, frame).use_onnx(threads=1)
    assert (eager.runtime, fast.runtime) == ("torch", "onnx")
    affect = np.array([1.0, 0.0, -1.0], np.float32)
    feats = {"e_sem": np.ones((3, 5)), "e_sty": -np.ones((3, 4)), "e_tsem": np.zeros((3, 3))}
    requests = [
        ("u1", [f"i{k}" for k in range(50)], affect, None),  # known user and items, with affect
        ("u1", ["i3"], None, None),  # batch of one, no affect
        ("nobody", ["brand-new", "i1", "other-new"], affect, feats),  # cold user, items added after training
    ]
    for _ in range(2):  # the second round reads every item's modality stack from the bundle's cache
        for user, items, aff, given in requests:
            s1, w1, n1 = eager.score(user, items, aff, given)
            s2, w2, n2 = fast.score(user, items, aff, given)
            assert n1 == n2 and s2.shape == (len(items),) and w2.shape == w1.shape
            assert np.abs(s1 - s2).max() <= 1e-5 and np.abs(w1 - w2).max() <= 1e-5
    mixed = ["i7", "brand-new", "i49", "i0"]  # cached and uncached items in one request
    s1, _, _ = eager.score("u3", mixed, affect, {k: np.ones((4, v.shape[1])) for k, v in feats.items()})
    s2, _, _ = fast.score("u3", mixed, affect, {k: np.ones((4, v.shape[1])) for k, v in feats.items()})
    assert np.abs(s1[[0, 2, 3]] - s2[[0, 2, 3]]).max() <= 1e-5  # known items: their trained vectors
    with pytest.raises(ValueError, match="expected shape"):
        fast.score("u1", ["i1"], affect, item_features={"e_sty": np.ones((1, 2))})


def test_load_picks_the_runtime(tmp_path, prep, trained):  # noqa: F811
    bundle = RankerBundle.from_training("umair_fps", trained.model, prep.data.frame.iloc[prep.rows["train"]])
    bundle.save(tmp_path / "r")
    fast = RankerBundle.load(tmp_path / "r", runtime="onnx")
    assert fast.runtime == "onnx" and RankerBundle.load(tmp_path / "r").runtime == "torch"
    items = [f"i{k}" for k in range(20)]
    assert np.abs(fast.score("u2", items)[0] - bundle.score("u2", items)[0]).max() <= 1e-5
    with pytest.raises(ValueError, match="runtime: expected 'torch' or 'onnx'"):
        RankerBundle.load(tmp_path / "r", runtime="tensorrt")
    info = json.loads((tmp_path / "r" / "config.json").read_text())
    info["model_config"]["modality_norm"] = False  # a setting of another version
    (tmp_path / "r" / "config.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"does not know: \['modality_norm'\]"):
        RankerBundle.load(tmp_path / "r")


def test_cache_items_precomputes_a_catalog(prep, trained):  # noqa: F811
    frame = prep.data.frame.iloc[prep.rows["train"]]
    eager = RankerBundle.from_training("umair_fps", trained.model, frame)
    fast = RankerBundle.from_training("umair_fps", trained.model, frame).use_onnx(threads=1)
    items = [f"i{k}" for k in range(60)] + ["new-a", "new-b"]
    feats = {"e_sem": np.full((62, 5), 0.5), "e_sty": np.zeros((62, 4)), "e_tsem": np.ones((62, 3))}
    assert fast.cache_items(items, feats, batch_size=25) == 62 and eager.cache_items(items, feats) == 0
    pick = [3, 61, 60, 17]
    sub = {k: v[pick] for k, v in feats.items()}
    s1, _, _ = eager.score("u5", [items[i] for i in pick], None, sub)
    s2, _, _ = fast.score("u5", [items[i] for i in pick], None, None)  # all cached: no vectors needed
    assert np.abs(s1 - s2).max() <= 1e-5


def test_stack_cache_positions_and_rows():
    cache = _StackCache((2, 3))
    stacks = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    cache.add(["a", "b"], stacks)
    pos = cache.positions(["b", "x", "a"])
    assert pos.tolist() == [1, -1, 0]
    assert np.array_equal(cache.rows(pos[[0, 2]]), stacks[[1, 0]])
    assert np.array_equal(cache.rows(pos[[0, 2]]), cache.get(["b", "a"]))
