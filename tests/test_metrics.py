"""aigcrec.metrics against scikit-learn where it has the metric, against hand-computed cases where not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from aigcrec import metrics as m
from aigcrec.metrics import UndefinedMetricWarning


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.3 * y + rng.random(400) * 0.7, 0.01, 0.99)
    return y, np.round(p, 1)  # rounding makes many ties


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    logits = rng.normal(size=(300, 5)) + 2.0 * np.eye(5)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


# ------------------------------------------------------------------------------------------------ CTR
def test_auc_matches_sklearn_with_ties(binary):
    y, p = binary
    assert len(np.unique(p)) < len(p) / 10  # plenty of tied scores
    assert m.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_auc_hand_cases():
    assert m.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert m.auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert m.auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half
    assert m.auc([0, 1, 1], [3.0, -1.0, 7.0]) == 0.5  # any real score works
    assert m.auc(np.array([False, True]), [0.2, 0.9]) == 1.0


def test_auc_one_class_is_nan_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="one class"):
        assert math.isnan(m.auc([1, 1, 1], [0.2, 0.5, 0.9]))


@pytest.mark.parametrize("y,p,match", [
    ([], [], "empty"),
    ([0, 1], [0.5], "same length"),
    ([0, 2], [0.1, 0.2], "binary labels"),
    (["a", "b"], [0.1, 0.2], "binary labels"),
    ([0, 1], [0.1, float("nan")], "finite"),
    ([[0, 1]], [[0.1, 0.2]], "1-D"),
])
def test_auc_rejects_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        m.auc(y, p)


def test_logloss_matches_sklearn(binary):
    y, p = binary
    assert m.logloss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)
    assert m.logloss([1, 0], [1.0, 0.0]) == pytest.approx(-math.log(1 - 1e-15), abs=1e-15)  # clipped, finite
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        m.logloss([1, 0], [1.2, 0.1])


def test_gauc_hand_case():
    users = ["a", "a", "a", "b", "b", "c", "c"]
    y = [1, 0, 0, 1, 0, 1, 1]
    p = [0.9, 0.5, 0.95, 0.2, 0.8, 0.3, 0.4]
    # a: positive 0.9 beats 0.5, loses to 0.95 -> 1/2 (3 impressions); b: 0 (2); c: one class, skipped
    assert m.gauc(users, y, p) == pytest.approx((3 * 0.5 + 2 * 0.0) / 5)


def test_gauc_matches_per_user_sklearn(binary):
    y, p = binary
    users = np.random.default_rng(2).integers(0, 30, len(y))
    num = den = 0.0
    for u in np.unique(users):
        s = users == u
        if len(np.unique(y[s])) == 2:
            num += s.sum() * skm.roc_auc_score(y[s], p[s])
            den += s.sum()
    assert m.gauc(users, y, p) == pytest.approx(num / den, abs=1e-12)


def test_gauc_single_user_equals_auc_and_undefined_case(binary):
    y, p = binary
    assert m.gauc(np.zeros(len(y), dtype=int), y, p) == pytest.approx(m.auc(y, p), abs=1e-12)
    with pytest.warns(UndefinedMetricWarning, match="no user"):
        assert math.isnan(m.gauc([1, 2], [1, 0], [0.3, 0.4]))


# ----------------------------------------------------------------------------------------------- top-K
def test_recall_at_k_hand_case():
    ranked = [["a", "b", "c", "d"], ["x", "y", "z"], ["p"]]
    relevant = [{"b", "d", "e"}, {"q"}, set()]
    # user 0: top-2 has b -> 1/3; user 1: 0/1; user 2 has no relevant item: skipped
    assert m.recall_at_k(ranked, relevant, 2) == pytest.approx((1 / 3 + 0) / 2)
    assert m.recall_at_k(ranked, relevant, 10) == pytest.approx((2 / 3 + 0) / 2)


def test_ndcg_at_k_hand_case():
    ranked = [["a", "b", "c"], ["x", "y", "z"]]
    relevant = [{"c"}, {"x", "z"}]
    user0 = (1 / math.log2(4)) / 1.0
    user1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m.ndcg_at_k(ranked, relevant, 3) == pytest.approx((user0 + user1) / 2)
    assert m.ndcg_at_k(ranked, relevant, 1) == pytest.approx((0 + 1) / 2)


def test_ndcg_graded_matches_sklearn():
    gains = {"a": 3.0, "b": 0.0, "c": 1.0, "d": 2.0}
    ranked = ["b", "a", "c", "d"]  # predicted order
    scores = np.array([[4, 3, 2, 1]])  # the same order as scores over [b, a, c, d]
    true = np.array([[gains[i] for i in ranked]])
    for k in (1, 2, 4):
        assert m.ndcg_at_k([ranked], [gains], k) == pytest.approx(skm.ndcg_score(true, scores, k=k))


def test_topk_edge_cases():
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.ndcg_at_k([["a"]], [set()], 5))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.recall_at_k([["a"]], [set()], 5))
    with pytest.raises(ValueError, match="positive integer"):
        m.recall_at_k([["a"]], [{"a"}], 0)
    with pytest.raises(ValueError, match="distinct"):
        m.ndcg_at_k([["a", "a"]], [{"a"}], 2)
    with pytest.raises(ValueError, match="one relevant set per ranked list"):
        m.recall_at_k([["a"], ["b"]], [{"a"}], 1)
    with pytest.raises(ValueError, match="none"):
        m.recall_at_k([], [], 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.permutations(list(range(6))), min_size=1, max_size=5),
       st.lists(st.sets(st.integers(0, 7), min_size=1), min_size=5, max_size=5),
       st.integers(1, 8))
def test_topk_bounds_and_monotone_recall(ranked, relevant, k):
    relevant = relevant[: len(ranked)]
    r_k, r_next = m.recall_at_k(ranked, relevant, k), m.recall_at_k(ranked, relevant, k + 1)
    assert 0.0 <= r_k <= r_next <= 1.0
    assert 0.0 <= m.ndcg_at_k(ranked, relevant, k) <= 1.0 + 1e-12


# ------------------------------------------------------------------------------------- classification
def test_classification_matches_sklearn(multiclass):
    y, probs = multiclass
    pred = probs.argmax(axis=1)
    assert m.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert m.macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m.weighted_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m.nll(y, probs) == pytest.approx(skm.log_loss(y, probs, labels=range(5)), rel=1e-10)


def test_f1_with_string_labels_and_absent_class():
    y = ["joy", "joy", "anger", "fear"]
    pred = ["joy", "anger", "anger", "joy"]
    labels = ["anger", "fear", "joy", "surprise"]  # surprise occurs nowhere: F1 0, as sklearn zero_division=0
    for ours, avg in ((m.macro_f1, "macro"), (m.weighted_f1, "weighted")):
        assert ours(y, pred, labels=labels) == pytest.approx(
            skm.f1_score(y, pred, labels=labels, average=avg, zero_division=0))
    # hand: anger P=1/2 R=1 F1=2/3; fear 0; joy P=1/2 R=1/2 F1=1/2; surprise 0
    assert m.macro_f1(y, pred, labels=labels) == pytest.approx((2 / 3 + 0.5) / 4)
    assert m.weighted_f1(y, pred) == pytest.approx((1 * 2 / 3 + 1 * 0 + 2 * 0.5) / 4)


def test_nll_and_brier_binary_vector_form(binary):
    y, p = binary
    assert m.nll(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)  # (N,) = P(y=1)
    assert m.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))


def test_brier_multiclass_hand_case():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y = [0, 1]
    expected = ((0.3**2 + 0.2**2 + 0.1**2) + (0.1**2 + 0.9**2 + 0.8**2)) / 2
    assert m.brier(y, probs) == pytest.approx(expected)


def test_ece_hand_case():
    # two bins of 2: n_bins=2 -> (0, .5] and (.5, 1]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.45, 0.55]])
    y = np.array([0, 1, 1, 0])
    # all in the upper bin (confidences .9 .8 .6 .55, mean .7125); correct: yes no yes no -> acc .5
    assert m.ece(y, probs, n_bins=2) == pytest.approx(abs(0.5 - 0.7125))
    # 10 bins: (.8,.9] {.9 ok}, (.7,.8] {.8 wrong}, (.5,.6] {.6 ok, .55 wrong}
    expected = (1 * abs(1 - 0.9) + 1 * abs(0 - 0.8) + 2 * abs(0.5 - 0.575)) / 4
    assert m.ece(y, probs, n_bins=10) == pytest.approx(expected)
    table = m.reliability_bins(y, probs, n_bins=10)
    assert table["count"].tolist() == [0, 0, 0, 0, 0, 2, 0, 1, 1, 0]
    assert np.isnan(table["accuracy"][0]) and table["confidence"][8] == pytest.approx(0.9)


def test_ece_perfectly_calibrated_and_bounds(multiclass):
    y, probs = multiclass
    onehot = np.eye(5)[y]
    assert m.ece(y, onehot) == 0.0
    assert 0.0 <= m.ece(y, probs) <= 1.0


@pytest.mark.parametrize("y,probs,match", [
    ([0, 1], [[0.5, 0.4], [0.5, 0.5]], "summing to 1"),
    ([0, 3], [[0.5, 0.5], [0.5, 0.5]], "class indices in 0..1"),
    ([0.0, 1.0], [[0.5, 0.5], [0.5, 0.5]], "integer class indices"),
    ([0], [[0.5, 0.5], [0.5, 0.5]], "same length"),
    ([0, 1], np.ones((2, 2, 1)), r"\(N, C\)"),
])
def test_probability_metrics_reject_bad_input(y, probs, match):
    with pytest.raises(ValueError, match=match):
        m.nll(y, probs)


def test_classification_edge_cases():
    with pytest.raises(ValueError, match="empty"):
        m.accuracy([], [])
    with pytest.raises(ValueError, match="same length"):
        m.macro_f1([1, 2], [1])
    with pytest.raises(ValueError, match="occur in y"):
        m.weighted_f1([1, 2], [1, 2], labels=[3])
    with pytest.raises(ValueError, match="n_bins"):
        m.ece([0], [[1.0, 0.0]], n_bins=0)
    assert m.macro_f1([3, 3], [3, 3]) == 1.0  # one class only is well defined here


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=2, max_size=40))
def test_auc_property_matches_sklearn(pairs):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    if len(np.unique(y)) < 2:
        return
    assert m.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m.auc(y, p) == pytest.approx(1 - m.auc(1 - y, p), abs=1e-12)  # swapping classes mirrors AUC
