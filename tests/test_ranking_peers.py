"""The FuxiCTR baselines (``fuxictr_<name>``): each builds, trains and learns a simple signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aigcrec.metrics import auc
from aigcrec.ranking.config import ModelConfig, TrainConfig
from aigcrec.ranking.data import RankingData, warm_split
from aigcrec.ranking.experiment import prepare
from aigcrec.ranking.features import Field

pytest.importorskip("fuxictr")
peers = pytest.importorskip("aigcrec.ranking.peers")

SMALL = ModelConfig(embedding_dim=4, low_rank=4, num_experts=2, dnn_units=[8], dropout=0.0)
FAST = TrainConfig(batch_size=128, max_epochs=6, patience=2, lr=1e-2)


@pytest.fixture(scope="module")
def prep():
    """Clicks from a user bias plus an item bias, over user / item / creator fields."""
    rng = np.random.default_rng(0)
    n_users, n_items, n = 30, 40, 2400
    u, it = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    logit = 2.0 * rng.normal(size=n_users)[u] + 2.0 * rng.normal(size=n_items)[it]
    frame = pd.DataFrame({"user_id": [f"u{k}" for k in u], "item_id": [f"i{k}" for k in it],
                          "creator": [f"c{k % 5}" for k in it], "timestamp": np.arange(n, dtype=float),
                          "label": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})
    fields = [Field("user_id", "categorical", "user"), Field("item_id", "categorical", "item"),
              Field("creator", "categorical", "item")]
    data = RankingData("tiny", frame, fields, {})
    p = prepare(data, warm_split(data.frame))
    return p, p.spec.tabular_only()


def test_all_eight_authors_baselines_are_peers():
    assert set(peers.ALL_PEERS) >= {f"fuxictr_{n}" for n in ("deepfm", "xdeepfm", "dcn", "dcnv2", "difm", "edcn",
                                                                "fibinet", "finalmlp")}
    assert set(peers.PEERS) == {"deepctr_dcnmix", "fuxictr_dcnv2"}
    with pytest.raises(ValueError, match="unknown FuxiCTR model"):
        peers.run_fuxictr(None, None, None, SMALL, FAST, 0, name="nope")


@pytest.mark.parametrize("name", peers.FUXICTR_MODELS if hasattr(peers, "FUXICTR_MODELS") else [])
def test_fuxictr_model_learns_the_biases(prep, name):
    p, tab = prep
    out = peers.RUNNERS[f"fuxictr_{name}"](tab, p.parts, p.labels, SMALL, FAST, 0)
    probs = out["probs"]
    assert probs.shape == p.labels["test"].shape and np.isfinite(probs).all()
    assert auc(p.labels["test"], probs) > 0.65, name
