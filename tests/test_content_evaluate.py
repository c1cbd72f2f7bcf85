"""Neighbour-label precision (style/subject P@k, across the other label) and the genre kNN, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from aigcrec.content.evaluate import knn_multilabel_f1, neighbours, precision_at_k


def test_precision_at_k_by_hand():
    # two tight clusters on the x axis: items 0-2 around +1, items 3-5 around -1 (after centring)
    x = np.array([[1, 0.1], [1, 0.0], [1, -0.1], [-1, 0.1], [-1, 0.0], [-1, -0.1]], float)
    assert precision_at_k(x, list("aaabbb"), k=2) == 1.0
    assert precision_at_k(x, list("abab ab".replace(" ", "")), k=2) == pytest.approx(1 / 3)


def test_block_excludes_neighbours_with_the_same_other_label():
    x = np.array([[1, 0.1], [1, 0.0], [1, -0.1], [-1, 0.1], [-1, 0.0], [-1, -0.1]], float)
    style = np.array(list("aaabbb"))
    subject = np.array(["s", "s", "t", "s", "t", "t"])
    nn = neighbours(x, 1, block=subject)
    assert all(subject[nn[i, 0]] != subject[i] for i in range(6))
    # item 0 (subject s) may only pick items 2, 4, 5; the nearest is item 2 (same cluster, style a)
    assert nn[0, 0] == 2
    assert precision_at_k(x, style, k=1, block=subject) == 1.0
    with pytest.raises(ValueError, match="different block label"):
        neighbours(x, 4, block=subject)


def test_knn_multilabel_f1_beats_majority_on_clustered_genres():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    genres = [["a"], ["b"], ["c"]]
    x = np.concatenate([centres[i] + rng.normal(size=(20, 3)) for i in range(3)])
    labels = [genres[i] for i in range(3) for _ in range(20)]
    res = knn_multilabel_f1(x, labels, k=5)
    assert res["knn_micro_f1"] > 0.9 and res["majority_micro_f1"] == pytest.approx(1 / 3)
