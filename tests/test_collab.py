"""The item-item candidate model (EASE^R closed form, ``aigcrec.retrieval.collab``) and its source in the
served pipeline: the weights against numpy on a tiny matrix, pruning, the size refusal, saving and
loading, feedback changing the list, and the score fusion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aigcrec.retrieval.collab import ItemItemModel, ease_weights, sparsify
from aigcrec.retrieval.config import CollabConfig
from aigcrec.service.assemble import ServicePaths, load_collab, load_retriever
from aigcrec.service.config import ServiceConfig
from aigcrec.service.pipeline import SOURCE_COLLAB, RecommendPipeline, fuse_retrieval

from test_service_support import ContentDotRanker


def _positives(x: np.ndarray) -> pd.DataFrame:
    u, i = np.nonzero(x)
    return pd.DataFrame({"user_id": [f"u{k}" for k in u], "item_id": [f"i{k}" for k in i]})


def _tiny(seed: int = 0, users: int = 30, items: int = 9) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((users, items)) < 0.35).astype(np.float64)


def test_closed_form_matches_numpy_on_a_tiny_matrix():
    x = _tiny()
    lam = 3.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    expected = np.eye(x.shape[1]) - p @ np.diag(1.0 / np.diag(p))  # eq. 8 of Steck (2019)
    np.testing.assert_allclose(ease_weights(x, lam), expected, atol=1e-12)
    model = ItemItemModel.fit(_positives(x), [f"i{k}" for k in range(x.shape[1])], CollabConfig(lam=lam, half_life=0.0))
    b = model.weights.toarray()
    np.testing.assert_allclose(b, expected, atol=1e-6)  # stored float32, every weight kept (9 <= neighbours)
    assert np.all(np.diag(b) == 0) and model.figures["exact"]
    # The constrained least squares it solves: off the diagonal, G B = G - lambda B (stationarity).
    g = x.T @ x
    off = ~np.eye(x.shape[1], dtype=bool)
    np.testing.assert_allclose((g @ expected)[off], (g - lam * expected)[off], atol=1e-9)
    # Scores of a user are x_u B; a user's repeated positive counts once.
    hist = ["i0", "i3", "i3"]
    np.testing.assert_allclose(model.scores(hist), expected[0] + expected[3], atol=1e-6)


def test_pruning_keeps_the_largest_weights_per_item():
    b = ease_weights(_tiny(1, items=12), 2.0)
    s = sparsify(b, 4).toarray()
    for i in range(len(b)):
        kept = np.flatnonzero(s[i])
        assert len(kept) == 4
        assert np.abs(b[i, kept]).min() >= np.abs(np.delete(b[i], kept)).max()
        np.testing.assert_allclose(s[i, kept], b[i, kept], rtol=1e-6)


def test_catalog_above_max_items_is_refused_naming_the_setting():
    x = _tiny(items=9)
    with pytest.raises(ValueError, match=r"9 items > retrieval.collab.max_items 8"):
        ItemItemModel.fit(_positives(x), [f"i{k}" for k in range(9)], CollabConfig(max_items=8))


def test_save_and_load_give_the_same_scores(tmp_path):
    x = _tiny(2)
    cfg = CollabConfig(lam=5.0, neighbours=5, half_life=2.0)
    model = ItemItemModel.fit(_positives(x), [f"i{k}" for k in range(x.shape[1])], cfg)
    back = ItemItemModel.load(model.save(tmp_path / "item_item"))
    assert back.item_ids == model.item_ids and back.config == cfg and back.weights.nnz == model.weights.nnz
    hist = ["i1", "i4", "i7", "unknown"]
    np.testing.assert_array_equal(back.scores(hist), model.scores(hist))
    with pytest.raises(FileNotFoundError, match="not a saved item_item"):
        ItemItemModel.load(tmp_path / "missing")


def test_half_life_weights_recent_positives_more():
    x = _tiny(3)
    ids = [f"i{k}" for k in range(x.shape[1])]
    model = ItemItemModel.fit(_positives(x), ids, CollabConfig(half_life=1.0))
    np.testing.assert_allclose(model.query(["i2", "i5"])[[2, 5]], [0.5, 1.0])  # the newest weighs 1


def _pipeline(collab, n_items: int = 9, **svc) -> RecommendPipeline:
    rng = np.random.default_rng(0)
    metas = [{"item_id": f"i{k}", "created_at": float(k)} for k in range(n_items)]
    vectors = {n: rng.normal(size=(n_items, 8)).astype(np.float32) for n in ("e_sem", "e_sty", "e_tsem")}
    cfg = ServiceConfig(diversity=0.0, **svc)
    cfg = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"dim": 8, "candidates": n_items})})
    return RecommendPipeline.build(cfg, metas, vectors, ContentDotRanker(), collab=collab)


def test_feedback_changes_the_item_item_source():
    # Two disjoint taste groups: items 0-3 liked together, items 4-7 liked together, item 8 by nobody.
    x = np.zeros((40, 9))
    x[:20, :4] = np.random.default_rng(0).random((20, 4)) < 0.7
    x[20:, 4:8] = np.random.default_rng(1).random((20, 4)) < 0.7
    ids = [f"i{k}" for k in range(9)]
    pipe = _pipeline(ItemItemModel.fit(_positives(x), ids, CollabConfig(lam=1.0)))
    assert pipe.collab_list("new", 9) is None  # no live positive: no list
    pipe.observe([{"user_id": "new", "item_id": "i0", "type": "bookmark", "ts": 1.0}])
    first = {pipe.catalog.item_ids[r] for r in pipe.collab_list("new", 9)}
    assert first and first <= {"i1", "i2", "i3"}  # the item's own group (positive weights only)
    pipe.observe([{"user_id": "new", "item_id": "i5", "type": "bookmark", "ts": 2.0}])
    second = {pipe.catalog.item_ids[r] for r in pipe.collab_list("new", 9)}
    assert second & {"i4", "i6", "i7"}  # the new positive's group enters the list
    lists = pipe.source_lists("new", 9)
    assert SOURCE_COLLAB in lists
    rec = pipe.recommend("new", 3)
    assert {"i0", "i5"}.isdisjoint(it.item_id for it in rec.items)  # seen items are not served


def test_collab_weight_one_serves_in_the_item_item_order():
    x = _tiny(4, users=60)
    ids = [f"i{k}" for k in range(9)]
    pipe = _pipeline(ItemItemModel.fit(_positives(x), ids, CollabConfig(lam=2.0)), collab_weight=1.0)
    pipe.observe([{"user_id": "u", "item_id": "i0", "type": "bookmark", "ts": 1.0},
                  {"user_id": "u", "item_id": "i1", "type": "bookmark", "ts": 2.0}])
    order = [pipe.catalog.item_ids[r] for r in pipe.collab_list("u", 9) if r not in pipe.users.seen_rows("u")]
    served = [it.item_id for it in pipe.recommend("u", len(order)).items]
    assert served == order and any(it != f"i{k + 2}" for k, it in enumerate(order))


def test_fuse_retrieval_adds_each_models_rank():
    p = np.array([0.9, 0.1, 0.5])
    rows = np.array([10, 11, 12])
    tt, cf = np.array([11, 12]), np.array([12, 10, 11])
    np.testing.assert_allclose(fuse_retrieval(p, rows, tt, 0.0, [(cf, 0.0)]), p)
    # (1 - 0.3 - 0.5) p + 0.3 (1 - r_tt / 2) + 0.5 (1 - r_cf / 3)
    expected = 0.2 * p + 0.3 * np.array([0.0, 1.0, 0.5]) + 0.5 * np.array([2 / 3, 1 / 3, 1.0])
    np.testing.assert_allclose(fuse_retrieval(p, rows, tt, 0.3, [(cf, 0.5)]), expected)
    with pytest.raises(ValueError, match="sum to 1.2"):
        fuse_retrieval(p, rows, tt, 0.7, [(cf, 0.5)])
    with pytest.raises(ValueError, match="collab_weight"):
        ServiceConfig(retrieval_weight=0.7, collab_weight=0.5)


def test_fuse_retrieval_leaves_a_model_out_of_the_blend_of_items_it_cannot_score():
    p = np.array([0.9, 0.1, 0.5])
    rows = np.array([0, 1, 2])
    tt, cf = np.array([2, 0, 1]), np.array([0, 1])  # row 2: no item-item evidence (a cold item)
    knows = np.array([True, True, False])
    q_tt, q_cf = np.array([2 / 3, 1 / 3, 1.0]), np.array([1.0, 0.5, 0.0])
    worst = 0.2 * p + 0.2 * q_tt + 0.6 * q_cf
    np.testing.assert_allclose(fuse_retrieval(p, rows, tt, 0.2, [(cf, 0.6, knows)], "worst"), worst)
    # Known rows: the plain blend; row 2: (0.2 p + 0.2 q_tt) / 0.4, the item-item share left out.
    expected = worst.copy()
    expected[2] = (0.2 * p[2] + 0.2 * q_tt[2]) / 0.4
    np.testing.assert_allclose(fuse_retrieval(p, rows, tt, 0.2, [(cf, 0.6, knows)]), expected)
    assert expected[2] > expected[1] and worst[2] < worst[1]  # it competes on the others' terms; "worst" sinks it
    # A row past the end of ``knows`` (added after the build) is unknown; with no knowing term, p alone.
    np.testing.assert_allclose(fuse_retrieval(p[:2], np.array([0, 5]), None, 0.0, [(cf, 1.0, knows)]), [1.0, 0.1])
    with pytest.raises(ValueError, match="unknown='drop'"):
        fuse_retrieval(p, rows, tt, 0.2, [(cf, 0.6, knows)], "drop")


def test_an_item_without_positives_or_added_later_is_unknown_to_the_item_item_model(tmp_path):
    x = np.zeros((40, 9))
    x[:, :8] = np.random.default_rng(0).random((40, 8)) < 0.4  # item 8: no positive
    ids = [f"i{k}" for k in range(9)]
    model = ItemItemModel.fit(_positives(x), ids, CollabConfig(lam=1.0, neighbours=3))
    assert model.known.tolist() == [True] * 8 + [False]
    np.testing.assert_array_equal(ItemItemModel.load(model.save(tmp_path / "item_item")).known, model.known)
    # Shown in the training interactions but liked by nobody: evidence (its worst rank is deserved), so known.
    shown = ItemItemModel.fit(_positives(x), ids, CollabConfig(lam=1.0, neighbours=3), shown=["i8"])
    assert shown.known.all()
    assert ItemItemModel.load(shown.save(tmp_path / "shown")).known.all()
    pipe = _pipeline(model, collab_weight=0.8, retrieval_weight=0.0)
    assert pipe._collab_knows.tolist() == model.known.tolist()
    rng = np.random.default_rng(1)
    new = pipe.add_item({"item_id": "fresh", "created_at": 99.0},
                        {n: rng.normal(size=8).astype(np.float32) for n in ("e_sem", "e_sty", "e_tsem")})
    assert new >= len(pipe._collab_knows)  # past the build's rows: unknown, its blend is the ranker's score


def test_serve_loads_the_saved_model_beside_or_without_the_two_tower(tmp_path):
    x = _tiny(5)
    model = ItemItemModel.fit(_positives(x), [f"i{k}" for k in range(x.shape[1])], CollabConfig())
    model.save(tmp_path / "retrieval" / "item_item")
    paths = ServicePaths(tmp_path / "catalog", tmp_path / "features", tmp_path / "ranker",
                         retrieval_dir=tmp_path / "retrieval")
    back = load_collab(paths)
    assert back is not None and back.item_ids == model.item_ids
    np.testing.assert_array_equal(back.scores(["i1"]), model.scores(["i1"]))
    assert load_retriever(paths) is None  # the folder holds the item-item model only: no two-tower
    assert load_collab(ServicePaths(tmp_path / "c", tmp_path / "f", tmp_path / "r")) is None
