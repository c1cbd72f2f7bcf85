"""The HTTP API on a synthetic catalog with the test models of test_service_support (in-process)."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aigcrec.service.app import create_app  # noqa: E402
from aigcrec.service.config import InputLimits  # noqa: E402
from aigcrec.service.store import ServiceStore, events_to_interactions  # noqa: E402
from test_service_support import ContentDotRanker, open_state, png_bytes, wav_bytes  # noqa: E402

AUTH = {"Authorization": "Bearer test-key"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("svc") / "service.sqlite"


@pytest.fixture(scope="module")
def client(db):
    state = open_state(db)
    with TestClient(create_app(state)) as c:
        yield c


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """A server with tiny limits, to hit every limit with small inputs."""
    limits = InputLimits(
        max_body_bytes=60_000,
        max_image_bytes=20_000,
        max_image_pixels=300,
        max_audio_bytes=40_000,
        max_audio_seconds=0.25,
        max_text_chars=10,
    )
    state = open_state(tmp_path_factory.mktemp("tight") / "s.sqlite", limits=limits)
    with TestClient(create_app(state)) as c:
        yield c


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    assert "Traceback" not in r.text
    return body


def test_cold_start_for_unknown_user(client):
    r = client.post("/v1/recommend", json={"user_id": "nobody-yet", "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 7
    assert len({i["item_id"] for i in body["items"]}) == 7
    assert body["explanation"]["cold_start"] is True
    assert set(body["explanation"]["sources"]) <= {"fresh", "popular"}
    assert body["explanation"]["affect"] is None
    for item in body["items"]:
        assert set(item["modality_weights"]) == {"item_sparse", "e_sem", "e_sty", "e_tsem"}
        assert sum(item["modality_weights"].values()) == pytest.approx(1.0, abs=1e-6)


def test_signals_give_affect_explanation(client):
    signals = {"text": "I am so happy today", "voice": b64(wav_bytes()), "face": b64(png_bytes())}
    r = client.post("/v1/recommend", json={"user_id": "u-signals", "k": 5, "signals": signals})
    assert r.status_code == 200, r.text
    affect = r.json()["explanation"]["affect"]
    assert affect["emotion"] == "joy"
    assert affect["modalities_used"] == ["text", "voice", "face"]
    assert sum(affect["emotion_probs"].values()) == pytest.approx(1.0, abs=1e-6)
    r2 = client.post("/v1/affect", json={"signals": {"text": "so sad"}})
    assert r2.status_code == 200 and r2.json()["emotion"] == "sadness"
    assert_problem(client.post("/v1/affect", json={"signals": {}}), 422)


def test_feedback_changes_next_recommendations(client):
    first = client.post("/v1/recommend", json={"user_id": "u-fb", "k": 6}).json()
    liked = first["items"][0]["item_id"]
    r = client.post(
        "/v1/feedback", headers=AUTH, json={"user_id": "u-fb", "item_id": liked, "type": "bookmark"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    second = client.post("/v1/recommend", json={"user_id": "u-fb", "k": 6}).json()
    assert second["explanation"]["cold_start"] is False
    ids = [i["item_id"] for i in second["items"]]
    assert liked not in ids  # exclude_seen
    assert "similar_to_history" in second["explanation"]["sources"]
    # Candidates from history come from the liked item's content cluster.
    state = client.app.state.service
    catalog = state.pipeline.catalog

    def cluster(item_id: str) -> str:  # synthetic_catalog tags each item with its cluster
        return catalog.meta[catalog.row_of[item_id]]["tags"][0]["text"]

    similar = [i["item_id"] for i in second["items"] if i["source"] == "similar_to_history"]
    same = [cluster(i) == cluster(liked) for i in similar]
    assert np.mean(same) >= 0.8


def test_the_ranker_reads_the_users_live_positives(tmp_path):
    """After a bookmark the ranker gets the item in ``history`` with its content vectors."""
    seen: list[tuple[list[str], dict]] = []

    class SpyRanker(ContentDotRanker):
        def score(self, user_id, item_ids, affect_vector=None, item_features=None, history=None,
                  history_features=None):
            seen.append((list(history or []), dict(history_features or {})))
            return super().score(user_id, item_ids, affect_vector, item_features)

    state = open_state(tmp_path / "spy.sqlite", n_items=30)
    state.pipeline.ranker = SpyRanker()
    with TestClient(create_app(state)) as c:
        liked = c.post("/v1/recommend", json={"user_id": "u-live", "k": 3}).json()["items"][0]["item_id"]
        assert seen[-1][0] == []  # no positives yet
        c.post("/v1/feedback", headers=AUTH, json={"user_id": "u-live", "item_id": liked, "type": "bookmark"})
        c.post("/v1/recommend", json={"user_id": "u-live", "k": 3})
    history, feats = seen[-1]
    assert history == [liked]
    catalog = state.pipeline.catalog
    row = catalog.row_of[liked]
    assert np.allclose(feats["e_sem"], catalog.features_of(np.array([row]))["e_sem"])


def test_the_ranker_gets_as_many_positives_as_its_profile_reads(tmp_path, monkeypatch):
    """The service keeps the ranker's history length of positives even when the retrieval query reads fewer."""
    seen: list[list[str]] = []
    monkeypatch.setattr(ContentDotRanker, "history_len", 4, raising=False)

    class SpyRanker(ContentDotRanker):
        def score(self, user_id, item_ids, affect_vector=None, item_features=None, history=None,
                  history_features=None):
            seen.append(list(history or []))
            return super().score(user_id, item_ids, affect_vector, item_features)

    state = open_state(tmp_path / "len.sqlite", n_items=30, retrieval={"history_len": 2})
    state.pipeline.ranker = SpyRanker()
    liked = list(state.pipeline.catalog.item_ids[:6])
    with TestClient(create_app(state)) as c:
        for item in liked:
            c.post("/v1/feedback", headers=AUTH, json={"user_id": "u-len", "item_id": item, "type": "bookmark"})
        c.post("/v1/recommend", json={"user_id": "u-len", "k": 3})
    assert seen[-1] == liked[-4:]
    assert state.pipeline.users.history("u-len", 2) == [state.pipeline.catalog.row_of[i] for i in liked[-2:]]


def test_feedback_batch_reports_and_skips_bad_events(client):
    events = [
        {"user_id": "u-b", "item_id": "i1", "type": "impression"},
        {"user_id": "u-b", "item_id": "no-such-item", "type": "click"},
        {"user_id": "u-b", "item_id": "i2", "type": "dwell", "value": 12.5},
    ]
    r = client.post("/v1/feedback", headers=AUTH, json={"events": events})
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["accepted"] == 2 and ack["last_seq"] == ack["first_seq"] + 1
    assert ack["rejected"] == [{"index": 1, "reason": "unknown item_id 'no-such-item'"}]
    body = assert_problem(
        client.post(
            "/v1/feedback", headers=AUTH, json={"user_id": "u-b", "item_id": "nope", "type": "click"}
        ),
        422,
    )
    assert "nope" in body["detail"]
    assert_problem(
        client.post(
            "/v1/feedback", headers=AUTH, json={"user_id": "u-b", "item_id": "i1", "type": "purchase"}
        ),
        422,
    )


def test_writes_need_the_key(client, tmp_path):
    event = {"user_id": "u", "item_id": "i1", "type": "click"}
    assert_problem(client.post("/v1/feedback", json=event), 401)
    assert_problem(client.post("/v1/feedback", json=event, headers={"Authorization": "Bearer wrong"}), 401)
    # No key configured: refused, even in demo mode, for a client that is not on loopback.
    state = open_state(tmp_path / "nokey.sqlite", n_items=50, api_key=None, demo_mode=True)
    with TestClient(create_app(state)) as c:  # the test client's host is "testclient", not loopback
        assert_problem(c.post("/v1/feedback", json=event), 403)
        assert c.post("/v1/recommend", json={"user_id": "u"}).status_code == 200  # reads stay open


def test_new_item_is_retrievable_at_once(client):
    r = client.post(
        "/v1/items",
        headers=AUTH,
        json={
            "item_id": "fresh-1",
            "title": "a red fox",
            "tags": [{"text": "fox", "lang": "en"}],
            "creator_id": "c-new",
            "image": b64(png_bytes((220, 90, 10))),
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["origin"] == "api"
    got = client.get("/v1/items/fresh-1")
    assert got.status_code == 200 and got.json()["title"] == "a red fox"
    img = client.get("/v1/items/fresh-1/image")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    # In the FAISS index now: its own retrieval vector finds it first.
    pipe = client.app.state.service.pipeline
    row = pipe.catalog.row_of["fresh-1"]
    _, rows = pipe.index.search(pipe.retrieval_vectors[row : row + 1], 1)
    assert rows[0, 0] == row
    # And in the fresh candidates of a cold user's very next request.
    rec = client.post("/v1/recommend", json={"user_id": "cold-after-post", "k": 12}).json()
    assert "fresh-1" in [i["item_id"] for i in rec["items"]]
    assert_problem(
        client.post(
            "/v1/items",
            headers=AUTH,
            json={"item_id": "fresh-1", "title": "again", "image": b64(png_bytes())},
        ),
        409,
    )


def test_content_is_sniffed_not_trusted(client):
    wav_as_png = "data:image/png;base64," + b64(wav_bytes())
    assert_problem(client.post("/v1/items", headers=AUTH, json={"title": "x", "image": wav_as_png}), 415)
    assert_problem(
        client.post("/v1/recommend", json={"user_id": "u", "signals": {"voice": b64(png_bytes())}}), 415
    )
    assert_problem(
        client.post("/v1/recommend", json={"user_id": "u", "signals": {"face": "%%%not base64"}}), 422
    )
    truncated = png_bytes()[:20]
    assert_problem(
        client.post("/v1/recommend", json={"user_id": "u", "signals": {"face": b64(truncated)}}), 422
    )


def test_limits_are_enforced(tight):
    assert_problem(tight.post("/v1/affect", json={"signals": {"text": "x" * 11}}), 413)
    assert_problem(tight.post("/v1/affect", json={"signals": {"face": b64(png_bytes(size=(20, 20)))}}), 413)
    assert_problem(tight.post("/v1/affect", json={"signals": {"voice": b64(wav_bytes(seconds=0.5))}}), 413)
    big = b64(b"\x89PNG\r\n\x1a\n" + bytes(30_000))
    body = assert_problem(tight.post("/v1/affect", json={"signals": {"face": big}}), 413)
    assert "20000 bytes" in body["detail"]
    assert_problem(
        tight.post(
            "/v1/affect", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"}
        ),
        413,
    )
    ok = tight.post(
        "/v1/affect",
        json={
            "signals": {
                "text": "happy",
                "voice": b64(wav_bytes(seconds=0.2)),
                "face": b64(png_bytes(size=(16, 16))),
            }
        },
    )
    assert ok.status_code == 200, ok.text
    assert_problem(tight.post("/v1/recommend", json={"user_id": "u", "k": 101}), 422)


def test_errors_are_problem_json(client, tmp_path):
    assert_problem(client.get("/v1/items/missing"), 404)
    assert_problem(client.get("/no/such/route"), 404)
    assert_problem(client.get("/v1/recommend"), 405)
    assert_problem(
        client.post("/v1/recommend", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert_problem(client.post("/v1/recommend", json={"user_id": "has space"}), 422)

    class BrokenRanker(ContentDotRanker):
        def score(self, *args, **kwargs):
            raise RuntimeError("secret internal detail")

    state = open_state(tmp_path / "broken.sqlite", n_items=30)
    state.pipeline.ranker = BrokenRanker()
    with TestClient(create_app(state), raise_server_exceptions=False) as c:
        r = c.post("/v1/recommend", json={"user_id": "u"})
        body = assert_problem(r, 500)
        assert "secret" not in r.text and "RuntimeError" not in r.text and body["type"].endswith("/internal")


def test_ops_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok", "items": None, "index": None, "process": None}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] >= 300 and ready["index"] == "flat"
    assert ready["process"] == os.getpid()  # TestClient runs the app in this process
    client.post("/v1/recommend", json={"user_id": "metrics-user"})
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'aigcrec_http_requests_total{method="POST",route="/v1/recommend",status="200"}' in text
    assert 'aigcrec_http_request_duration_seconds_bucket{route="/v1/recommend",le="+Inf"}' in text
    assert "aigcrec_catalog_items " in text
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/recommend",
        "/v1/affect",
        "/v1/items",
        "/v1/feedback",
        "/v1/items/{item_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="recommend"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_state_survives_restart(tmp_path):
    db = tmp_path / "restart.sqlite"
    state = open_state(db, n_items=40)
    with TestClient(create_app(state)) as c:
        assert (
            c.post(
                "/v1/items",
                headers=AUTH,
                json={"item_id": "kept", "title": "kept", "image": b64(png_bytes())},
            ).status_code
            == 201
        )
        assert (
            c.post(
                "/v1/feedback", headers=AUTH, json={"user_id": "r", "item_id": "kept", "type": "bookmark"}
            ).status_code
            == 200
        )
    again = open_state(db, n_items=40)
    assert "kept" in again.pipeline.catalog.row_of
    assert again.pipeline.users.history("r") == [again.pipeline.catalog.row_of["kept"]]
    assert again.store.counts()["items"] == 41


def test_events_to_interactions_labels(tmp_path):
    store = ServiceStore(tmp_path / "ev.sqlite")
    store.append_events(
        [
            {"user_id": "a", "item_id": "x", "type": "impression"},
            {"user_id": "a", "item_id": "x", "type": "bookmark"},
            {"user_id": "a", "item_id": "y", "type": "impression"},
            {"user_id": "b", "item_id": "x", "type": "skip"},
        ]
    )
    frame = events_to_interactions(store.iter_events()).set_index(["user_id", "item_id"])
    assert frame.loc[("a", "x"), "label"] == 1
    assert frame.loc[("a", "y"), "label"] == 0 and frame.loc[("b", "x"), "label"] == 0
    assert len(frame) == 3
    with pytest.raises(ValueError, match="empty batch"):
        store.append_events([])
    assert json.loads(json.dumps(store.counts())) == {"items": 0, "users": 2, "events": 4}


def test_two_states_on_one_file_follow_each_others_writes(tmp_path):
    """What several server processes do (``service.workers``), in one process: each follows the log."""
    db = tmp_path / "shared.sqlite"
    a, b = open_state(db, n_items=40), open_state(db, n_items=40)
    assert a.store.counts()["items"] == 40  # the second open found the catalog imported
    vectors = {name: np.asarray(m.values[0]) for name, m in a.pipeline.catalog.features.items()}
    meta = {"item_id": "new-1", "title": "t", "tags": [], "creator_id": None, "style": None,
            "image_path": None, "created_at": 1.0, "origin": "api"}
    a.store.add_item(meta, png_bytes(), vectors)
    a.store.append_events([{"user_id": "u-x", "item_id": "new-1", "type": "bookmark"}])
    changes = b.changes()
    assert b.apply(changes) == (1, 1) and b.apply(changes) == (0, 0)  # applied once, even if fetched twice
    assert "new-1" in b.pipeline.catalog.row_of and b.pipeline.users.history("u-x")
    assert b.pipeline.index.ntotal == 41
    rec = b.pipeline.recommend("u-x", 5)
    assert not rec.cold_start
    assert a.sync() == (1, 1) and a.sync() == (0, 0)
    a.store.close()
    b.store.close()
