"""The two-tower retrieval model (loss, training inputs, save/load) and the service's blended candidates.

The tiny-world test uses stand-in content vectors that cost a second: colour thumbnails of the item images
(the palette is a colour) for e_SEM / e_STY and the offline MiniLM text encoder for e_TSEM (the query path
needs real text embeddings); the affect model is the keyword model of ``test_service_support``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from aigcrec.retrieval.config import TwoTowerConfig
from aigcrec.retrieval.data import ContentInput, RetrievalData, restricted, world_retrieval_data
from aigcrec.retrieval.model import sampled_softmax_logq_loss
from aigcrec.retrieval.retriever import TwoTowerRetriever
from aigcrec.saved import CONFIG_FILE
from aigcrec.retrieval.trainer import history_codes, pooled_histories, train_two_tower
from aigcrec.service.config import RetrievalConfig, ServiceConfig, SourceShares
from aigcrec.service.pipeline import (
    SOURCE_FRESH,
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_QUERY,
    SOURCE_TWO_TOWER,
    RecommendPipeline,
    blend_shares,
    fuse_retrieval,
)
from test_service_support import ContentDotRanker, KeywordAffectState

WORLD_EMOTIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
WORLD_INTENTS = ("explore", "relax", "get_inspired", "find_specific", "share")


# -- the loss -------------------------------------------------------------------------------------------

def test_logq_loss_is_the_corrected_sampled_softmax():
    g = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)  # B = 4 rows
    v = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)  # 4 positives + M = 2 extras
    log_q = torch.log(torch.tensor([0.1, 0.3, 0.2, 0.3, 0.05, 0.05]))
    ids = torch.tensor([1, 2, 3, 2, 7, 1])  # rows 1 and 3 hold the same item; extra column 5 is row 0's item
    tau = 0.1
    loss = sampled_softmax_logq_loss(u, v, log_q, ids, tau)
    assert loss.shape == ()
    expected = 0.0
    for b in range(4):
        s = [float(u[b] @ v[j]) / tau - float(log_q[j]) for j in range(6)]
        columns = [j for j in range(6) if j == b or int(ids[j]) != int(ids[b])]
        expected -= s[b] - math.log(sum(math.exp(s[j]) for j in columns))
    assert float(loss) == pytest.approx(expected / 4, rel=1e-5)
    # Without the correction (uniform Q) it is the plain sampled softmax: the correction changes the loss.
    assert float(sampled_softmax_logq_loss(u, v, torch.zeros(6), ids, tau)) != pytest.approx(float(loss), rel=1e-3)
    # B = 1 without extras: the positive is its own only candidate.
    assert float(sampled_softmax_logq_loss(u[:1], v[:1], log_q[:1], ids[:1], tau)) == pytest.approx(0.0, abs=1e-6)


def test_histories_hold_only_earlier_positives():
    x = np.eye(4, dtype=np.float32)
    pos = pd.DataFrame({"user_id": ["a", "a", "a", "b", "a"], "item_id": ["i0", "i1", "i2", "i3", "i3"],
                        "timestamp": [1.0, 2.0, 2.0, 3.0, 4.0]})
    h = pooled_histories(pos, x, {f"i{k}": k for k in range(4)}, history_len=2)
    np.testing.assert_array_equal(h[0], 0)  # first positive: no history
    np.testing.assert_array_equal(h[1], x[0])  # i1 at t=2 sees i0 only
    np.testing.assert_array_equal(h[2], x[0])  # i2 at the same second does not see i1
    np.testing.assert_array_equal(h[3], 0)  # another user
    np.testing.assert_allclose(h[4], (x[1] + x[2]) / 2)  # the last 2


def test_history_codes_are_the_ids_of_the_same_earlier_positives():
    pos = pd.DataFrame({"user_id": ["a", "a", "a", "b", "a"], "item_id": ["i0", "i1", "i2", "i3", "i3"],
                        "timestamp": [1.0, 2.0, 2.0, 3.0, 4.0]})
    c = history_codes(pos, {f"i{k}": k + 1 for k in range(4)}, history_len=2)
    np.testing.assert_array_equal(c, [[0, 0], [1, 0], [1, 0], [0, 0], [2, 3]])  # 0-padded, last 2, no leak


# -- save / load ------------------------------------------------------------------------------------------

def _synthetic_data(n_items: int = 40, n_users: int = 12, seed: int = 0) -> RetrievalData:
    rng = np.random.default_rng(seed)
    ids = [f"i{k}" for k in range(n_items)]
    content = {"e_sem": rng.normal(size=(n_items, 6)), "e_sty": rng.normal(size=(n_items, 3)),
               "e_tsem": rng.normal(size=(n_items, 5))}
    rows = [(f"u{rng.integers(n_users)}", ids[rng.integers(n_items)], float(t), f"s{t // 3}") for t in range(300)]
    positives = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session_id"])
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(n_users)], "gender": ["f", "m", None] * (n_users // 3)})
    sessions = sorted(set(positives["session_id"]))
    context = pd.DataFrame(rng.dirichlet(np.ones(3), size=len(sessions)), index=pd.Index(sessions, name="session_id"),
                           columns=["emotion_p_joy", "emotion_p_sadness", "intent_p_relax"])
    return RetrievalData("synthetic", positives, ids, {k: v.astype(np.float32) for k, v in content.items()}, users,
                         ["gender"], context)


def test_two_tower_save_load_round_trip(tmp_path):
    data = _synthetic_data()
    model = train_two_tower(data, TwoTowerConfig(epochs=2, batch_size=32, dim=8, hidden=16), seed=0)
    path = model.save(tmp_path / "tt")
    loaded = TwoTowerRetriever.load(path)
    assert loaded.config == model.config and loaded.context_names == model.context_names
    new_ids = [*data.item_ids, "brand-new"]  # an item the model never saw: served from its content
    feats = {k: np.vstack([v, v[:1]]) for k, v in data.content.items()}
    a, b = model.item_vectors(new_ids, feats), loaded.item_vectors(new_ids, feats)
    assert a.shape == (41, 14 + 8) and loaded.dim == 22  # content skip (14 content dims) + tower width
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert not np.allclose(a[0], a[-1])  # same content, but i0 also has its id embedding
    state = KeywordAffectState("joy", {"joy": 0.9, "sadness": 0.1}, "relax", {"relax": 1.0}, 1.0, ["text"])
    ctx = loaded.context_vector(state)
    np.testing.assert_allclose(ctx, [0.9, 0.1, 1.0])
    hist = {k: v[:3] for k, v in data.content.items()}
    np.testing.assert_allclose(model.user_vector("u1", hist, ctx), loaded.user_vector("u1", hist, ctx), atol=1e-6)
    assert loaded.user_vector("nobody", None, None).shape == (1, 22)
    # The history-id term: same content history, other item ids -> another user vector; unknown ids add nothing.
    ids_a, ids_b = data.item_ids[:3], data.item_ids[3:6]
    ua, ub = loaded.user_vector("u1", hist, ctx, ids_a), loaded.user_vector("u1", hist, ctx, ids_b)
    np.testing.assert_allclose(ua, model.user_vector("u1", hist, ctx, ids_a), atol=1e-6)
    assert not np.allclose(ua, ub, atol=1e-4)
    np.testing.assert_allclose(loaded.user_vector("u1", hist, ctx, ["never-seen"] * 3),
                               loaded.user_vector("u1", hist, ctx), atol=1e-6)
    # A model saved before the term existed (no history_ids in its config, no weights for it) still loads.
    off = train_two_tower(data, TwoTowerConfig(epochs=1, batch_size=32, dim=8, hidden=16, history_ids=False), seed=0)
    old = off.save(tmp_path / "old")
    meta = json.loads((old / CONFIG_FILE).read_text())
    del meta["config"]["history_ids"]
    del meta["component"]  # and saved before aigcrec.saved: two_tower.json, no component field
    (old / CONFIG_FILE).unlink()
    (old / "two_tower.json").write_text(json.dumps(meta))
    back = TwoTowerRetriever.load(old)
    assert back.config.history_ids is False
    np.testing.assert_allclose(back.user_vector("u1", hist, ctx, ids_a), off.user_vector("u1", hist, ctx), atol=1e-6)
    # Another format is refused, naming the file.
    meta = (path / CONFIG_FILE).read_text().replace('"format": 1', '"format": 99')
    (path / CONFIG_FILE).write_text(meta)
    with pytest.raises(ValueError, match=r"config\.json: format 99"):
        TwoTowerRetriever.load(path)


def test_items_nobody_liked_are_not_sunk_when_negatives_come_from_liked_items():
    # Items 30-39: content from the same distribution, never a positive (held out, or new). Drawn as uniform
    # negatives from the whole catalog, the content path learns to sink them below every liked item; drawn
    # from the liked items only, they are ranked from their content like any other.
    data = _synthetic_data(n_items=40, n_users=12, seed=3)
    pos = data.positives
    pos = pos[pos["item_id"].map(lambda i: int(i[1:]) < 30)].reset_index(drop=True)
    data = RetrievalData(data.name, pos, data.item_ids, data.content, data.users, data.user_features, data.context)
    never = np.arange(30, 40)
    gaps = {}
    for neg in ("catalog", "liked"):
        cfg = TwoTowerConfig(epochs=30, batch_size=32, dim=8, hidden=16, uniform_negatives=64, negatives_from=neg)
        model = train_two_tower(data, cfg, seed=0)
        items = model.item_vectors(["?"] * 40, data.content)  # (40, d) content path alone, for every item
        users = np.vstack([model.user_vector(f"u{k}", {b: v[:5] for b, v in data.content.items()}, None)
                           for k in range(12)])  # (12, d)
        s = users @ items.T  # (12, 40)
        gaps[neg] = float(s[:, :30].mean() - s[:, never].mean())
    assert gaps["catalog"] > 0.1 and gaps["liked"] < gaps["catalog"] / 2, gaps
    with pytest.raises(ValueError, match="negatives_from"):
        TwoTowerConfig(negatives_from="everything")


def test_restricted_data_knows_the_items_shown_in_its_interactions():
    data = _synthetic_data(n_items=10, n_users=6, seed=1)
    pos = data.positives.iloc[:5]
    rows = pd.concat([pos.assign(label=1), pd.DataFrame({"user_id": ["u0"], "item_id": ["i9"], "timestamp": [999.0],
                                                         "session_id": ["s0"], "label": [0]})])
    sub = restricted(data, rows)
    assert len(sub.positives) == 5
    assert set(sub.shown) == set(pos["item_id"]) | {"i9"}  # the disliked row's item too, in catalog order
    assert sub.shown == [i for i in data.item_ids if i in set(sub.shown)]


def test_content_input_weighs_blocks_alike():
    feats = {"e_sem": np.random.default_rng(0).normal(size=(10, 4)) * 100, "e_tsem": np.ones((10, 2)) + np.eye(10, 2)}
    x = ContentInput.fit(feats, ["e_sem", "e_tsem"]).transform(feats)
    assert x.shape == (10, 6) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x[:, :4], axis=1), np.sqrt(0.5), atol=1e-5)
    # With a PCA width the rows are the centred concatenation on its top principal axes.
    y = ContentInput.fit(feats, ["e_sem", "e_tsem"], width=3).transform(feats)
    assert y.shape == (10, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    cov = y.T @ y
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-4)  # uncorrelated components
    assert cov[0, 0] >= cov[1, 1] >= cov[2, 2] > 0  # by decreasing variance
    xc = x - x.mean(axis=0)
    top = np.linalg.eigvalsh(xc.T @ xc)[::-1][:3]
    np.testing.assert_allclose(np.diag(cov), top, rtol=1e-3)  # the top-3 variances of the concatenation


# -- the blend ------------------------------------------------------------------------------------------------

def test_blend_shares_mix_intents_and_renormalise():
    cfg = RetrievalConfig(blend={"none": SourceShares(history=1, popular=1),
                                 "find_specific": SourceShares(query=3, popular=1)})
    assert blend_shares(cfg, None, [SOURCE_HISTORY, SOURCE_POPULAR]) == {SOURCE_HISTORY: 0.5, SOURCE_POPULAR: 0.5}
    mixed = blend_shares(cfg, {"find_specific": 0.5, "unlisted": 0.5}, [SOURCE_HISTORY, SOURCE_QUERY, SOURCE_POPULAR])
    assert mixed == pytest.approx({SOURCE_HISTORY: 0.5 / 3, SOURCE_QUERY: 1.5 / 3, SOURCE_POPULAR: 1 / 3})
    # A cold user without text: only the fresh and popular sources remain.
    assert blend_shares(cfg, {"find_specific": 1.0}, [SOURCE_FRESH, SOURCE_POPULAR]) == {SOURCE_FRESH: 0.0,
                                                                                     SOURCE_POPULAR: 1.0}
    with pytest.raises(ValueError, match="'none' entry"):
        RetrievalConfig(blend={"relax": SourceShares(history=1)})


def test_fuse_retrieval_blends_the_two_tower_rank_into_the_ranker_score():
    p = np.array([0.9, 0.2, 0.5])
    rows = np.array([7, 3, 5])
    ranked = np.array([3, 5, -1, 9])  # row 3 first, row 5 second, row 7 absent (R = 4)
    np.testing.assert_array_equal(fuse_retrieval(p, rows, ranked, 0.0), p)  # w = 0: the ranker alone
    np.testing.assert_array_equal(fuse_retrieval(p, rows, None, 0.7), p)  # no two-tower: unchanged
    np.testing.assert_allclose(fuse_retrieval(p, rows, ranked, 1.0), [0.0, 1.0, 0.75])  # its rank alone
    np.testing.assert_allclose(fuse_retrieval(p, rows, ranked, 0.5), [0.45, 0.6, 0.625])
    assert np.argmax(fuse_retrieval(p, rows, ranked, 0.5)) == 2  # the blend reorders what the ranker put first


def test_retrieval_weight_one_serves_in_the_two_towers_order(world_pipeline):
    pipe, world = world_pipeline
    user = str(world.users["user_id"].iloc[0])
    before = pipe.config
    try:
        pipe.config = before.model_copy(update={"retrieval_weight": 1.0, "diversity": 0.0})
        seen = pipe.users.seen_rows(user)
        cands = set(int(r) for r in pipe.candidates(user, pipe.config.retrieval.candidates, seen)[0])
        order = pipe.source_lists(user, pipe.config.retrieval.candidates + len(seen))[SOURCE_TWO_TOWER]
        expected = [pipe.catalog.item_ids[int(r)] for r in order if int(r) in cands][:5]
        served = [r.item_id for r in pipe.recommend(user, 5).items]
        assert served == expected  # the two-tower's best candidates in its order, whatever the ranker scores
        pipe.config = before
        assert [r.item_id for r in pipe.recommend(user, 5).items] != served  # w = 0: the ranker's order
    finally:
        pipe.config = before


# -- the tiny world: a sad user asking for calm gets other, calmer candidates -------------------------------

class SadCalmAffect:
    """Keyword affect for the world's labels: 'sad' -> sadness, 'calm' -> relax (else neutral / explore)."""

    def predict(self, text=None, voice=None, face=None) -> KeywordAffectState:
        text = (text or "").lower()
        emotion = "sadness" if "sad" in text else "neutral"
        intent = "relax" if "calm" in text else "explore"
        emo = {e: 0.8 if e == emotion else 0.2 / 6 for e in WORLD_EMOTIONS}
        intents = {i: 0.8 if i == intent else 0.05 for i in WORLD_INTENTS}
        return KeywordAffectState(emotion, emo, intent, intents, 0.8, ["text"])


@pytest.fixture(scope="module")
def world_pipeline(tiny_world):
    from PIL import Image

    from aigcrec.content.pairs import item_text
    from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder
    from aigcrec.data.world import load_world

    world = load_world(tiny_world, check_files=False)
    items = world.items

    def thumbs(side: int) -> np.ndarray:
        return np.stack([np.asarray(Image.open(p).convert("RGB").resize((side, side)), np.float32).ravel() / 255
                         for p in items["image_path"]])

    text = MultiPerspectiveTextEncoder()
    vectors = {"e_sem": thumbs(6), "e_sty": thumbs(3),
               "e_tsem": text.encode([item_text(r) for r in items.to_dict(orient="records")])}
    ids = items["item_id"].tolist()
    data = world_retrieval_data(tiny_world, {k: (ids, v) for k, v in vectors.items()})
    model = train_two_tower(data, TwoTowerConfig(epochs=12, batch_size=64), seed=0)
    metas = [{"item_id": r["item_id"], "title": r["title"], "tags": r["tags"], "creator_id": r["creator_id"],
              "style": None, "image_path": None, "created_at": r["created_at"]} for r in items.to_dict("records")]
    config = ServiceConfig(retrieval=RetrievalConfig(candidates=30))
    pipe = RecommendPipeline.build(config, metas, vectors, ContentDotRanker(), SadCalmAffect(), retriever=model,
                                   query_encoder=lambda s: text.encode([s])[0],
                                   affect_context=lambda state: None)  # the test ranker reads no affect
    return pipe, world


def test_sad_user_asking_for_calm_gets_candidates_the_truth_prefers(world_pipeline):
    from aigcrec.world.truth import ClickTruth

    pipe, world = world_pipeline
    truth = ClickTruth(world)
    # What a user without history in a sad, relaxing session truly prefers: the click logit under that state,
    # averaged over the world's users (a newcomer is any of them), per catalog row.
    z = np.mean([truth.logits(u, "sadness", "relax") for u in truth.users], axis=0)
    z = z[[truth.item_ids.index(i) for i in pipe.catalog.item_ids]]
    said = "I feel so sad today, I want something calming"
    plain_rows, plain_sources, cold = pipe.candidates("newcomer", 30, set())
    rows, sources, cold_too = pipe.candidates("newcomer", 30, set(), pipe.read_affect(text=said), said)
    assert cold and cold_too
    assert set(rows) != set(plain_rows)  # the candidates themselves change, not only their order
    assert SOURCE_QUERY in sources and SOURCE_TWO_TOWER in sources and SOURCE_QUERY not in plain_sources
    assert z[rows].mean() > z[plain_rows].mean() + 0.1
    # The mood term alone (the session-dependent part of the truth) moves the same way.
    mood = truth.mood_values("sadness", "relax")[[truth.item_ids.index(i) for i in pipe.catalog.item_ids]]
    assert mood[rows].mean() > mood[plain_rows].mean() + 0.1
    # Through the request path: the explanation names each item's source.
    rec = pipe.recommend("newcomer", 10, pipe.read_affect(text=said), query=said)
    assert {r.source for r in rec.items} <= {SOURCE_TWO_TOWER, SOURCE_QUERY, SOURCE_FRESH, SOURCE_POPULAR}
    assert rec.source_shares and abs(sum(rec.source_shares.values()) - 1) < 1e-9


def test_two_tower_source_serves_items_added_live(world_pipeline):
    pipe, _ = world_pipeline
    row = 3
    feats = {k: m.values[row] for k, m in pipe.catalog.features.items()}
    before = pipe.two_tower_index.ntotal
    new = pipe.add_item({"item_id": "live-new", "title": "a new piece", "tags": [], "created_at": 2e9}, feats)
    assert pipe.two_tower_index.ntotal == before + 1 and pipe.text_index.ntotal == before + 1
    lists = pipe.source_lists("newcomer", len(pipe.catalog))
    assert new in set(lists[SOURCE_TWO_TOWER].tolist()) and new in set(lists[SOURCE_FRESH][:1].tolist())


def test_demo_stage_trains_saves_and_reuses_its_cache(world_pipeline, tmp_path, monkeypatch):
    from aigcrec.config import AppConfig
    from aigcrec.demo import DemoContext
    from aigcrec.report import Report
    from aigcrec.demo import retrieval as demo

    pipe, world = world_pipeline
    n = len(world.items)
    vectors = {k: (pipe.catalog.item_ids[:n], m.values[:n]) for k, m in pipe.catalog.features.items()}

    class Store:  # the content stage's feature store, as the two-tower reads it
        def __init__(self, path):
            assert str(path) == "STORE"

        def load(self, name):
            return vectors[name]

    monkeypatch.setattr(demo, "FeatureStore", Store)
    cfg = AppConfig.model_validate({"retrieval": {"two_tower": {"epochs": 1, "batch_size": 64}}})

    def context() -> DemoContext:
        ctx = DemoContext(config=cfg, run_dir=tmp_path, cache_dir=tmp_path / "cache", report=Report("t"))
        ctx.artifacts.update(world_dir=str(world.root), feature_store="STORE")
        return ctx

    ctx = context()
    demo.run(ctx)
    saved = TwoTowerRetriever.load(ctx.artifacts["retrieval_dir"])
    assert saved.figures["positives"] > 0 and "Retrieval: two-tower model" in ctx.report.to_html()
    monkeypatch.setattr(demo, "train_two_tower", lambda *a, **k: pytest.fail("the cached model is reused"))
    ctx2 = context()
    demo.run(ctx2)
    assert ctx2.artifacts["retrieval_dir"] == ctx.artifacts["retrieval_dir"]
    assert ctx2.metrics["retrieval"]["two_tower"] == ctx.metrics["retrieval"]["two_tower"]


def test_click_truth_is_the_worlds_click_equation(tiny_world):
    """The logits of the shown items equal the simulated ones up to the click noise (noise_sd 0.3)."""
    from aigcrec.data.world import load_world
    from aigcrec.world.truth import ClickTruth

    world = load_world(tiny_world, check_files=False)
    truth = ClickTruth(world)
    shown = pd.read_csv(tiny_world / "impressions_truth.csv")
    row = {i: r for r, i in enumerate(truth.item_ids)}
    z = np.array([truth.session_logits(s)[row[i]] for s, i in zip(shown["session_id"], shown["item_id"])])
    residual = np.log(shown["p_click"] / (1 - shown["p_click"])) - z
    assert abs(residual.mean()) < 0.05 and 0.25 < residual.std() < 0.35
    top = truth.top_items(shown["session_id"].iloc[0], 5)
    assert len(top) == 5 and (np.diff(truth.session_logits(shown["session_id"].iloc[0])[top]) <= 0).all()
