"""The Ray engines (encode, train, serve) against the local ones, on one local 2-CPU Ray cluster.

The cluster starts once for the module and is shut down at the end; the tests skip (with the reason)
only when Ray is not installed or cannot start here. Ray start-up dominates the run time.
"""

from __future__ import annotations

import csv
import functools
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

from aigcrec.distributed.train import equal_shards

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'aigcrec[ray]')")
    # Replicas import the test doubles of test_service_support from this folder.
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    except Exception as exc:  # noqa: BLE001 - any start failure means: this machine cannot run Ray
        pytest.skip(f"Ray cannot start a local cluster on this machine: {exc}")
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


# ------------------------------------------------------------------------------------------------- shards

def test_equal_shards_are_disjoint_equal_and_seeded():
    shards = equal_shards(11, 3, seed=5)
    assert [len(s) for s in shards] == [3, 3, 3]
    flat = np.concatenate(shards)
    assert len(set(flat.tolist())) == 9 and flat.max() < 11
    assert all((a == b).all() for a, b in zip(shards, equal_shards(11, 3, seed=5)))
    assert not all((a == b).all() for a, b in zip(shards, equal_shards(11, 3, seed=6)))
    with pytest.raises(ValueError, match="cannot shard 1 training rows over 2 workers"):
        equal_shards(1, 2, seed=0)


def test_missing_ray_extra_is_one_clear_error(monkeypatch):
    import sys

    from aigcrec.distributed.cluster import RayUnavailable, require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra looks like
    with pytest.raises(RayUnavailable, match=r"pip install 'aigcrec\[ray\]'"):
        require_ray()


def test_too_many_workers_for_a_local_cluster_is_refused(ray_cluster):
    from aigcrec.distributed.cluster import RayUnavailable, ray_session

    with pytest.raises(RayUnavailable, match="has 2 CPUs but the job's workers need 3"), ray_session(need_cpus=3):
        pass
    with ray_session(need_cpus=2):  # and the fixture's cluster is left running
        pass
    assert ray_cluster.is_initialized()


def test_autoscaling_settings_are_validated_and_passed_to_serve():
    from pydantic import ValidationError

    from aigcrec.distributed.config import Autoscaling, DistributedConfig

    with pytest.raises(ValidationError, match="max_replicas"):
        Autoscaling(min_replicas=3, max_replicas=2)
    opts = Autoscaling(min_replicas=0, max_replicas=4, target_ongoing_requests=2, num_cpus=0.25).serve_options()
    assert opts == {"autoscaling_config": {"min_replicas": 0, "max_replicas": 4, "initial_replicas": 1,
                                           "target_ongoing_requests": 2.0},
                    "ray_actor_options": {"num_cpus": 0.25}}
    assert DistributedConfig().train_workers == 2


# ------------------------------------------------------------------------------------------------- encode

def _small_catalog(world: Path, out: Path, n: int = 12) -> Path:
    """The first ``n`` items of the world with their images; item 3's image corrupt, item 5's missing."""
    (out / "images").mkdir(parents=True)
    with open(world / "items.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    with open(out / "items.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        shutil.copy(world / row["image"], out / row["image"])
    (out / rows[2]["image"]).write_bytes(b"this is not an image")
    (out / rows[4]["image"]).unlink()
    return out


def test_encode_on_ray_equals_local(ray_cluster, tiny_world, tmp_path):
    import torch

    from aigcrec.content.config import ContentConfig, ImageEncoderConfig
    from aigcrec.content.encoder import ContentEncoder
    from aigcrec.content.store import encode_catalog
    from aigcrec.distributed.encode import encode_catalog_ray

    catalog = _small_catalog(tiny_world, tmp_path / "catalog")
    torch.manual_seed(0)
    encoder = ContentEncoder(ContentConfig(image=ImageEncoderConfig(backbone="random:tiny", image_size=64,
                                                                    runtime="torch")))
    local = encode_catalog(catalog, tmp_path / "local", encoder=encoder, show_progress=False)
    remote = encode_catalog_ray(catalog, tmp_path / "ray", encoder=encoder, workers=2, batch_size=4,
                                show_progress=False)
    assert sorted(local.names) == sorted(remote.names) and {"e_sem", "e_sty", "e_tsem"} <= set(local.names)
    for name in local.names:
        ids_l, mat_l = local.load(name)
        ids_r, mat_r = remote.load(name)
        assert ids_l == ids_r
        np.testing.assert_allclose(mat_r, mat_l, atol=1e-5, rtol=0)
    assert remote.item_ids == local.item_ids
    assert remote.manifest["encoders"] == local.manifest["encoders"]
    # The two bad images are reported the same way by both engines and skipped.
    cols = ["item_id", "group", "reason"]
    errors_l = local.problems().query("severity == 'error'")[cols].sort_values(cols).to_numpy().tolist()
    errors_r = remote.problems().query("severity == 'error'")[cols].sort_values(cols).to_numpy().tolist()
    assert errors_r == errors_l and len(errors_l) == 2
    assert remote.manifest["last_run"]["engine"] == "ray"
    assert remote.manifest["last_run"]["images_encoded"] == 10  # by the actors,
    assert remote.manifest["last_run"]["driver_images_encoded"] == 0  # none left for the driver


# -------------------------------------------------------------------------------------------------- train

def test_train_ranker_on_ray_matches_single_process(ray_cluster, tiny_world, tmp_path):
    from aigcrec.distributed.train import run_variant_ray
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.config import ModelConfig, TrainConfig
    from aigcrec.ranking.data import warm_split, world_dataset
    from aigcrec.ranking.experiment import prepare, run_variant

    data = world_dataset(tiny_world)
    prep = prepare(data, warm_split(data.frame))
    model_cfg = ModelConfig(tower_units=[32, 16], modality_dim=16, dnn_units=[32, 16], low_rank=8, num_experts=2)
    train_cfg = TrainConfig(batch_size=128, max_epochs=4, patience=2, threads=1)
    local = run_variant(prep, "umair_fps", model_cfg, train_cfg, seed=0)
    epochs = []
    remote = run_variant_ray(prep, "umair_fps", model_cfg, train_cfg, seed=0, workers=2,
                             storage_dir=tmp_path / "ray_train", on_epoch=lambda e, row: epochs.append(e))
    assert set(remote.metrics) == set(local.metrics)
    assert epochs == list(range(len(remote.fit.history))) and remote.fit.best_epoch in epochs
    # Rank 0 checkpointed a RankerBundle: it loads and scores like a locally trained one.
    (checkpoint,) = [p.parent for p in (tmp_path / "ray_train").rglob("ranker.json")]
    bundle = RankerBundle.load(checkpoint)
    assert bundle.meta["engine"] == "ray" and bundle.meta["workers"] == 2
    scores, weights, names = bundle.score(prep.users["test"][0], list(data.frame["item_id"].iloc[:5]))
    assert scores.shape == (5,) and weights.shape == (5, len(names))
    np.testing.assert_allclose(bundle.model.state_dict()["head.weight"], remote.model.state_dict()["head.weight"])
    # Seed-to-seed noise of this model on the tiny world's test split is a few AUC points
    # (docs/scale-out.md), so the DDP run must land within that band of single-process training.
    assert abs(remote.metrics["auc"] - local.metrics["auc"]) <= 0.08, (remote.metrics, local.metrics)
    assert remote.metrics["val_auc"] > 0.5


def synthetic_affect_data(n: int, seed: int):
    """Test-only AffectData: each modality carries a noisy one-hot of the emotion; modalities go missing.

    (The world's real affect features need three encoders over every session: too slow for a unit test.)
    """
    from aigcrec.affect.data import AffectData
    from aigcrec.affect.encoders.base import Encoded

    rng = np.random.default_rng(seed)
    emotion = rng.integers(0, 7, n)
    intent = (emotion >= 4).astype(np.int64)  # intent follows the emotion, so the intent head can learn too
    present = rng.random((n, 3)) < 0.7
    present[~present.any(axis=1), 0] = True
    features = {}
    for j, (m, dim) in enumerate((("text", 12), ("voice", 8), ("face", 10))):
        signal = np.zeros((n, dim), np.float32)
        signal[np.arange(n), emotion] = 1.5
        pooled = (signal + rng.normal(0, 1.0, (n, dim))).astype(np.float32) * present[:, j:j + 1]
        seq = np.repeat(pooled[:, None, :], 3, axis=1) + rng.normal(0, 0.3, (n, 3, dim)).astype(np.float32)
        mask = np.repeat(present[:, j:j + 1], 3, axis=1)
        features[m] = Encoded((seq * mask[..., None]).astype(np.float32), mask, pooled, present[:, j].copy())
    return AffectData(features, emotion.astype(np.int64), intent)


def test_train_mmei_on_ray_matches_single_process(ray_cluster, tmp_path):
    import copy

    from aigcrec.affect.config import MMEIConfig
    from aigcrec.affect.metrics import classification_report
    from aigcrec.affect.model import AffectModel, MMEIModel
    from aigcrec.distributed.train import train_mmei_ray

    train, dev, test = (synthetic_affect_data(n, s) for n, s in ((600, 0), (150, 1), (300, 2)))
    dims = {m: (e.seq.shape[2], e.pooled.shape[1]) for m, e in train.features.items()}
    untrained = MMEIModel(dims, ["browse", "search"], MMEIConfig(width=16, heads=2, epochs=8, batch_size=64,
                                                                 patience=3))
    local = copy.deepcopy(untrained).fit(train, dev, seed=0)
    fitted = train_mmei_ray(untrained, train, dev, seed=0, workers=2, storage_dir=tmp_path / "ray_train")
    assert isinstance(fitted.model, AffectModel) and (fitted.checkpoint_dir / "model.json").is_file()
    assert fitted.metrics["workers"] == 2 and fitted.metrics["shard_rows"] == 300
    assert fitted.metrics["weights_in_sync"]  # DDP kept both workers' weights identical
    f1 = {name: classification_report(m.predict(test).emotion_probs, test.emotion)["macro_f1"]
          for name, m in (("local", local), ("ray", fitted.model))}
    assert f1["ray"] > 0.5 and abs(f1["ray"] - f1["local"]) <= 0.1, f1  # chance is 1/7
    with pytest.raises(ValueError, match="expected a dev set"):
        train_mmei_ray(untrained, train, None)


# -------------------------------------------------------------------------------------------------- serve

def open_test_state(db: Path, ranker, affect_model):
    """The service's state on the synthetic catalog of test_service_support, with the given models."""
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.state import ServiceState
    from aigcrec.service.store import ServiceStore
    from test_service_support import PixelHashEncoder, synthetic_catalog

    config = ServiceConfig(api_key="test-key", sqlite_synchronous="NORMAL")
    items, vectors = synthetic_catalog(120)
    return ServiceState.open(config, ServiceStore(db, config.sqlite_synchronous), items, vectors, ranker,
                             affect_model, PixelHashEncoder())


def test_serve_on_ray_answers_like_the_fastapi_service(ray_cluster, tmp_path):
    import httpx
    from fastapi.testclient import TestClient
    from ray import serve

    from aigcrec.distributed.config import Autoscaling, DistributedConfig
    from aigcrec.distributed.serve import APP_NAME, build_application, start
    from aigcrec.service.app import create_app
    from test_service_support import ContentDotRanker, KeywordAffect

    settings = DistributedConfig(ranking=Autoscaling(min_replicas=1, max_replicas=2, num_cpus=0.25),
                                 affect=Autoscaling(min_replicas=1, max_replicas=2, num_cpus=0.25), ingress_cpus=0.25)
    app = build_application(functools.partial(open_test_state, tmp_path / "ray.sqlite"), ContentDotRanker,
                            KeywordAffect, settings)
    with socket.socket() as sock:  # a free port for the Serve proxy
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = start(app, port=port)
    local_state = open_test_state(tmp_path / "local.sqlite", ContentDotRanker(), KeywordAffect())
    requests = [
        ("post", "/v1/recommend", {"user_id": "u1", "k": 6, "signals": {"text": "I am so happy"}}),
        ("post", "/v1/affect", {"signals": {"text": "so sad today"}}),
        ("post", "/v1/affect", {"signals": {}}),
        ("post", "/v1/recommend", {"user_id": "u1", "k": 1000}),
        ("get", "/v1/items/i7", None),
        ("get", "/healthz", None),
    ]
    with TestClient(create_app(local_state)) as local, httpx.Client(base_url=url, timeout=60) as remote:
        for method, path, body in requests:
            want = getattr(local, method)(path, **({"json": body} if body is not None else {}))
            got = getattr(remote, method)(path, **({"json": body} if body is not None else {}))
            assert got.status_code == want.status_code, (path, got.text)
            w, g = want.json(), got.json()
            for doc in (w, g):
                doc.pop("timings_ms", None)
                doc.pop("instance", None)
            assert g == w, path
        # Writes go through the same auth; feedback changes the next recommendation on Ray too.
        assert remote.post("/v1/feedback", json={"user_id": "u2", "item_id": "i1", "type": "bookmark"}
                           ).status_code in (401, 403)
        ack = remote.post("/v1/feedback", headers={"Authorization": "Bearer test-key"},
                          json={"user_id": "u2", "item_id": "i1", "type": "bookmark"})
        assert ack.status_code == 200 and ack.json()["accepted"] == 1
        rec = remote.post("/v1/recommend", json={"user_id": "u2", "k": 5}).json()
        assert rec["explanation"]["cold_start"] is False
    status = serve.status().applications[APP_NAME]
    assert set(status.deployments) == {"Ingress", "Ranking", "Affect"}
    serve.delete(APP_NAME)
