"""The top-K benchmark: its split, masks and metrics by hand, every peer, and every aigcrec row end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from typer.testing import CliRunner

from aigcrec.topk.peers import recbole_python

TINY_RANKING = {"model": {"embedding_dim": 4, "tower_units": [16, 8], "modality_dim": 8, "low_rank": 4,
                          "num_experts": 2, "dnn_units": [8], "dropout": 0.0},
                "train": {"batch_size": 256, "max_epochs": 1}}


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "label", "timestamp"])


def test_temporal_split_cuts_each_users_positives_20_10():
    from aigcrec.topk.protocol import temporal_split

    # user a: 10 positives at t = 0, 2, .., 18 with a negative after each (t + 1); user b: one positive only
    rows = [("a", f"p{t}", 1, 2 * t) for t in range(10)] + [("a", f"n{t}", 0, 2 * t + 1) for t in range(10)]
    rows += [("b", "p0", 1, 5)]
    frame = _frame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)  # order must not matter
    parts = temporal_split(frame)
    got = {k: sorted(frame.iloc[v]["item_id"] + "@" + frame.iloc[v]["user_id"]) for k, v in parts.items()}
    # a: test = its last 2 positives (p8, p9) and every row from p8 on; val = p7 and the negative after it
    assert got["test"] == sorted(["p8@a", "n8@a", "p9@a", "n9@a"])
    assert got["val"] == sorted(["p7@a", "n7@a"])
    assert len(got["train"]) == 21 - 6 and "p0@b" in got["train"]
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(frame)))


def test_tasks_mask_what_came_before_the_judged_period():
    from aigcrec.topk.protocol import make_tasks

    rows = [(u, f"i{(3 * k + j) % 40}", int(j % 3 != 2), 10 * j + k) for k, u in enumerate("abcdefgh") for j in range(20)]
    tasks = make_tasks(_frame(rows), cold_fraction=0.1, split_seed=0)
    frame = _frame(rows)
    for name, task in tasks.items():
        for u in task.users:
            assert task.relevant[u] and not task.relevant[u] & task.known.get(u, set())
    test = tasks["test"]
    val_items = set(frame.iloc[test.val]["item_id"][frame.iloc[test.val]["user_id"] == "a"])
    assert val_items <= test.known["a"]  # at test, validation items are masked too ...
    assert not val_items & tasks["val"].known.get("a", set())  # ... at validation they are the judged period
    cold = tasks["cold"]
    assert len(cold.cold_items) == 4
    assert not set(frame.iloc[cold.train]["item_id"]) & set(cold.cold_items)
    assert all(r <= set(cold.cold_items) for r in cold.relevant.values())


def test_top_k_never_ranks_a_masked_item_and_breaks_ties_by_position():
    from aigcrec.topk.evaluate import top_k

    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    best = top_k(scores, [np.array([1]), np.array([0, 1, 2, 3])], 3)
    assert best.tolist() == [[3, 2, 0], [4, -1, -1]]


def test_metrics_against_a_hand_computed_case():
    from aigcrec.topk.evaluate import metrics

    ranked = [["x", "a", "y", "b"] + [f"z{i}" for i in range(16)], ["c"] + [f"w{i}" for i in range(19)]]
    relevant = [{"a", "b", "q"}, {"c", "d"}]
    m = metrics(ranked, relevant, n_items=50)
    # user 0: hits at ranks 2 and 4 of 3 relevant; user 1: hit at rank 1 of 2 relevant
    dcg0, idcg0 = 1 / math.log2(3) + 1 / math.log2(5), 1 + 1 / math.log2(3) + 1 / math.log2(4)
    ndcg1 = 1 / (1 + 1 / math.log2(3))
    assert m["recall_at_10"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["ndcg_at_10"] == pytest.approx((dcg0 / idcg0 + ndcg1) / 2)
    assert m["mrr_at_20"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["coverage_at_10"] == pytest.approx(len(set(ranked[0][:10]) | set(ranked[1][:10])) / 50)
    cold = metrics(ranked, relevant, 50, cold=True)
    assert set(cold) == {"cold_recall_at_20", "cold_ndcg_at_20"}


def test_ease_matches_its_closed_form_and_every_peer_ranks_seen_items_first():
    from aigcrec.topk.peers import OPTIONAL_PEERS, PEERS, UNSEEN, TrainData

    rng = np.random.default_rng(0)
    x = (rng.random((30, 12)) < 0.3).astype(np.float32)
    x[:, 11] = 0  # item 11: no training positive
    data = TrainData(sp.csr_matrix(x), rng.normal(size=(12, 5)).astype(np.float32))
    lam = 10.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(12))
    b = np.eye(12) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    ease = PEERS["ease"].fit(data, {"lambda": lam}, 0)(np.arange(30))
    assert np.allclose(ease[:, :11], (x @ b)[:, :11], atol=1e-8) and (ease[:, 11] == UNSEEN).all()
    small = {"cornac_bpr": {"max_iter": 5}, "cornac_vbpr": {"n_epochs": 2}, "implicit_als": {"iterations": 2},
             "implicit_bpr": {"iterations": 5}, "recbole_lightgcn": {"epochs": 2}}
    for name, peer in PEERS.items():
        if name in OPTIONAL_PEERS and OPTIONAL_PEERS[name]() is None:
            continue  # its own environment is not here: test_recbole_lightgcn_* says so as a skip
        s = peer.fit(data, small.get(name, peer.grid[0]), 0)(np.array([0, 5]))
        assert s.shape == (2, 12) and np.isfinite(s).all(), name
        assert (s[:, 11] == UNSEEN).all() != peer.uses_content, name  # only VBPR scores the unseen item


def test_recbole_lightgcn_is_skipped_by_all_peers_without_its_environment_and_refused_when_named(
        tiny_world, tmp_path, monkeypatch):
    from aigcrec.config import AppConfig
    from aigcrec.topk import peers
    from aigcrec.topk.runner import run_topk

    monkeypatch.setenv(peers.RECBOLE_PYTHON_ENV, str(tmp_path / "no-such-python"))
    assert peers.recbole_python() is None
    with pytest.raises(RuntimeError, match="make bench-recbole"):
        peers.fit_recbole_lightgcn(peers.TrainData(sp.csr_matrix(np.eye(3)), np.zeros((3, 2))), {}, 0)
    with pytest.raises(ValueError, match="recbole_lightgcn needs its own environment"):  # before any work
        run_topk(None, "world", tiny_world, AppConfig(), [0], ["recbole_lightgcn"], tmp_path / "out")
    assert peers.OPTIONAL_PEERS["recbole_lightgcn"]() is None  # so `--peers` lists it under peers_not_run


@pytest.mark.skipif(recbole_python() is None,
                    reason="RecBole's environment is not here (make bench-recbole makes .venv-recbole)")
def test_recbole_lightgcn_trains_in_its_environment_and_scores_every_item():
    from aigcrec.topk.peers import PEERS, UNSEEN, TrainData

    rng = np.random.default_rng(1)
    x = (rng.random((40, 15)) < 0.3).astype(np.float32)
    x[:, 14] = 0  # no training positive
    s = PEERS["recbole_lightgcn"].fit(TrainData(sp.csr_matrix(x), np.zeros((15, 2), np.float32)),
                                      {"epochs": 2}, 0)(np.arange(40))
    assert s.shape == (40, 15) and np.isfinite(s[:, :14]).all() and (s[:, 14] == UNSEEN).all()
    assert np.unique(s[:, :14].round(6)).size > 14  # real per-user scores, not a constant


@pytest.fixture()
def fake_store(tiny_world, tmp_path, monkeypatch):
    from aigcrec import sources
    from aigcrec.world import load_world

    ids = load_world(tiny_world, check_files=False).items["item_id"].tolist()
    rng = np.random.default_rng(0)
    vectors = {m: (ids, rng.normal(size=(len(ids), d)).astype(np.float32)) for m, d in (("e_sem", 6), ("e_sty", 5), ("e_tsem", 4))}
    monkeypatch.setattr(sources, "content_vectors", lambda *a, **k: vectors)
    return tmp_path / "store"


def test_cli_topk_runs_every_aigcrec_row_on_a_tiny_world(tiny_world, fake_store, tmp_path):
    from aigcrec.cli.main import app
    from aigcrec.topk.ours import OURS

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"ranking": TINY_RANKING}), encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["benchmark", "topk", "--dataset", "world", "--data-dir", str(tiny_world),
                                   "--features", str(fake_store), "--seeds", "1", "--config", str(cfg),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "topk.json").read_text())
    assert set(result["models"]) == set(OURS)
    assert {"split", "ranking", "cold"} <= set(result["protocol"])
    for name, m in result["models"].items():
        for key in ("recall_at_10_mean", "ndcg_at_10_mean", "recall_at_20_mean", "ndcg_at_20_mean",
                    "cold_recall_at_20_mean", "train_s", "ms_per_user"):
            assert np.isfinite(m[key]) and m[key] >= 0, (name, key)
        assert 0 <= m["ndcg_at_10_mean"] <= 1
    assert "recall_at_500_mean" in result["models"]["aigcrec_retrieval"]
    assert result["models"]["aigcrec_served"]["tuning"]["params"] in result["models"]["aigcrec_served"]["tuning"]["grid"]
    assert "| aigcrec_served |" in (out / "topk.md").read_text()
    again = CliRunner().invoke(app, ["benchmark", "topk", "--dataset", "world", "--data-dir", str(tiny_world),
                                     "--features", str(fake_store), "--seeds", "1", "--config", str(cfg),
                                     "--out", str(out), "--gather"])  # every run read back from out/runs
    assert again.exit_code == 0, again.output
    assert json.loads((out / "topk.json").read_text())["models"] == result["models"]


def test_served_lists_exclude_everything_the_user_interacted_with(tiny_world, fake_store, tmp_path):
    """The served pipeline, the retrieval stage and the ranker over all never return a masked item."""
    from aigcrec.config import load_config
    from aigcrec.sources import load_dataset
    from aigcrec.topk import ours
    from aigcrec.topk.protocol import make_tasks
    from aigcrec.topk.runner import build_catalog

    cfg = load_config(None).model_copy(deep=True)
    cfg = cfg.model_copy(update={"ranking": cfg.ranking.model_validate(TINY_RANKING)})
    data = load_dataset("world", tiny_world, tmp_path, fake_store)
    catalog, data = build_catalog(data, "world", tiny_world)
    task = make_tasks(data.frame)["test"]
    ranker = ours.TrainedRanker(data, task, "umair_fps", cfg.ranking, cfg.service, 0)
    pipe, _ = ours.build_pipeline(catalog, ranker, cfg.service, data.frame, task, 0)
    users = task.users[:5]
    for fn in (ours.served_lists, ours.retrieval_lists, ours.ranker_all_lists):
        lists, ms = fn(pipe, users)
        assert ms > 0
        for u, items in zip(users, lists):
            assert items and len(set(items)) == len(items) and not set(items) & task.known[u], fn.__name__


def test_peers_only_runs_no_aigcrec_row_and_a_content_free_peers_cold_figures_need_no_fit(
        tiny_world, fake_store, tmp_path):
    """``--peers-only``: only the named peers; their cold-item figures (judged without a fit, since such a
    peer ranks every item without training positives last) equal those of the fitted peer."""
    from aigcrec.cli.main import app
    from aigcrec.cli.ranking import load_cli_dataset
    from aigcrec.config import AppConfig
    from aigcrec.topk.peers import PEERS
    from aigcrec.topk.protocol import make_tasks
    from aigcrec.topk.runner import Matrices, _judge, build_catalog

    out = tmp_path / "out"
    args = ["benchmark", "topk", "--dataset", "world", "--data-dir", str(tiny_world), "--features",
            str(fake_store), "--seeds", "1", "--out", str(out), "--peer", "ease", "--peer", "popularity"]
    res = CliRunner().invoke(app, args + ["--peers-only"])
    assert res.exit_code == 0, res.output
    models = json.loads((out / "topk.json").read_text())["models"]
    assert set(models) == {"ease", "popularity"}
    cfg = AppConfig()
    catalog, data = build_catalog(load_cli_dataset("world", tiny_world, fake_store, None, cfg), "world", tiny_world)
    tasks = make_tasks(data.frame, cfg.ranking.cold_item_fraction, cfg.ranking.split_seed)
    mats = Matrices(data.frame, catalog)
    cold = tasks["cold"]
    for name in ("ease", "popularity"):
        fitted = PEERS[name].fit(mats.train_data(cold), models[name]["tuning"]["params"], 0)
        judged = _judge(cold, mats.peer_lists(fitted, cold), len(catalog.item_ids))
        assert models[name]["cold_recall_at_20_mean"] == pytest.approx(judged["cold_recall_at_20"], abs=1e-12)
        assert models[name]["cold_ndcg_at_20_mean"] == pytest.approx(judged["cold_ndcg_at_20"], abs=1e-12)
    refused = CliRunner().invoke(app, args[:-4] + ["--peers-only"])
    assert refused.exit_code == 2 and "name the peers" in refused.output


def test_a_catalog_layout_with_too_few_positives_for_validation_runs_untuned_and_says_so(tmp_path, monkeypatch):
    """`--dataset catalog` (items.csv + interactions.csv): 8 users with ~5 positives each have a test
    positive but no validation one; every grid keeps its default, marked untuned; a catalog where no user
    has a test positive is a clear error."""
    from aigcrec import sources
    from aigcrec.cli.main import app
    from aigcrec.data import samples

    cat = samples.write_catalog_layout_sample(tmp_path / "cat")
    ids = [f"a{i}" for i in range(16)]
    rng = np.random.default_rng(0)
    vectors = {m: (ids, rng.normal(size=(16, d)).astype(np.float32)) for m, d in (("e_sem", 6), ("e_sty", 5), ("e_tsem", 4))}
    monkeypatch.setattr(sources, "content_vectors", lambda *a, **k: vectors)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({"ranking": TINY_RANKING}), encoding="utf-8")
    args = ["benchmark", "topk", "--dataset", "catalog", "--features", str(tmp_path / "store"), "--seeds", "1",
            "--config", str(cfg), "--peer", "ease"]
    res = CliRunner().invoke(app, args + ["--data-dir", str(cat), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "out" / "topk.json").read_text())
    assert result["sizes"]["val_users"] == 0 and result["sizes"]["test_users"] > 0
    assert set(result["models"]) == {"aigcrec_served", "aigcrec_retrieval", "aigcrec_ranker_all", "ease"}
    for name in ("aigcrec_served", "ease"):
        assert result["models"][name]["tuning"]["untuned"] and result["models"][name]["tuning"]["val_ndcg_at_10"] is None
    assert "| aigcrec_served (defaults, not tuned) |" in (tmp_path / "out" / "topk.md").read_text()

    lines = (cat / "interactions.csv").read_text().splitlines()
    head, rows = lines[0], [r for r in lines[1:] if r.split(",")[2] == "0"]  # no positive at all
    (cat / "interactions.csv").write_text("\n".join([head, *rows, lines[1].rsplit(",", 2)[0] + ",1,1700000000"]) + "\n")
    bad = CliRunner().invoke(app, args + ["--data-dir", str(cat), "--out", str(tmp_path / "out2")])
    assert bad.exit_code == 2 and "no user has a test positive" in bad.output, bad.output


def test_gather_shows_an_optional_peers_cached_rows_without_its_environment(tiny_world, fake_store, tmp_path,
                                                                             monkeypatch):
    """`--gather` computes nothing, so rows of a peer with an environment of its own (cached by a process
    that had it) are shown where that environment is absent."""
    from aigcrec.cli.main import app
    from aigcrec.topk import peers

    monkeypatch.setenv(peers.RECBOLE_PYTHON_ENV, str(tmp_path / "no-such-python"))
    out = tmp_path / "out"
    args = ["benchmark", "topk", "--dataset", "world", "--data-dir", str(tiny_world), "--features",
            str(fake_store), "--seeds", "1", "--out", str(out)]
    assert CliRunner().invoke(app, args + ["--peer", "popularity", "--peers-only"]).exit_code == 0
    (cache,) = (out / "runs").iterdir()
    for f in cache.glob("*-popularity*.json"):  # stand-in for rows a process with RecBole wrote
        (cache / f.name.replace("popularity", "recbole_lightgcn")).write_text(f.read_text())
    res = CliRunner().invoke(app, args + ["--peers", "--gather"])
    assert res.exit_code == 0, res.output
    result = json.loads((out / "topk.json").read_text())
    assert "recbole_lightgcn" in result["models"] and "peers_not_run" not in result
    assert result["models"]["recbole_lightgcn"]["ndcg_at_10_mean"] == result["models"]["popularity"]["ndcg_at_10_mean"]
    computed = CliRunner().invoke(app, args + ["--peers"])  # computing it still needs the environment: listed
    assert computed.exit_code == 0 and "recbole_lightgcn" in json.loads((out / "topk.json").read_text())["peers_not_run"]
