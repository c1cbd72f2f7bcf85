"""The real stack on the tiny world: feature store (content encoder), UMAIR-FPS ranker bundle, MMEI predictor,
assembled by ``aigcrec.service.assemble`` and called through the HTTP API.

Small and fast settings (a random tiny image backbone, one ranker epoch, two MMEI epochs): the point is
that the real components plug together, not their quality.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def client(real_paths, tmp_path_factory):
    from fastapi.testclient import TestClient

    from aigcrec.config import AppConfig
    from aigcrec.service.app import create_app
    from aigcrec.service.assemble import open_real_state

    cfg = AppConfig()
    cfg.service.api_key = "real-key"
    state = open_real_state(cfg, real_paths, tmp_path_factory.mktemp("realdb") / "service.sqlite")
    with TestClient(create_app(state)) as c:
        yield c


@pytest.mark.slow
def test_real_stack_round_trip(client, real_paths):
    from aigcrec.world import load_world

    world = load_world(real_paths.catalog_dir, check_files=False)
    session = world.sessions[(world.sessions["face_path"] != "") & (world.sessions["voice_path"] != "")].iloc[
        0
    ]
    user = str(world.interactions["user_id"].iloc[0])

    plain = client.post("/v1/recommend", json={"user_id": user, "k": 8})
    assert plain.status_code == 200, plain.text
    body = plain.json()
    assert len(body["items"]) == 8 and body["explanation"]["cold_start"] is False
    names = body["explanation"]["modality_names"]
    assert len(names) >= 2 and all(set(i["modality_weights"]) == set(names) for i in body["items"])

    signals = {
        "text": session["text"],
        "voice": base64.b64encode(Path(session["voice_path"]).read_bytes()).decode(),
        "face": base64.b64encode(Path(session["face_path"]).read_bytes()).decode(),
    }
    with_affect = client.post("/v1/recommend", json={"user_id": user, "k": 8, "signals": signals})
    assert with_affect.status_code == 200, with_affect.text
    affect = with_affect.json()["explanation"]["affect"]
    pipe = client.app.state.service.pipeline  # the ranker's affect-context schema, checked by name at start
    assert pipe.affect_context(pipe.read_affect(text="hello")).shape == (pipe.ranker.affect_schema.dim,)
    served, _ = client.app.state.service.store.iter_served()  # the real reading, logged with its list
    logged = next(r for r in served if r["request_id"] == with_affect.json()["request_id"])
    assert logged["emotion_probs"] == pytest.approx(affect["emotion_probs"])
    assert logged["modalities_used"] == affect["modalities_used"] and logged["user_id"] == user
    assert affect["emotion"] in affect["emotion_probs"] and "text" in affect["modalities_used"]
    assert sum(affect["emotion_probs"].values()) == pytest.approx(1.0, abs=1e-4)

    # A new item through the real content encoder: retrievable at once.
    image = Path(world.items["image_path"].iloc[0]).read_bytes()
    new = client.post(
        "/v1/items",
        headers={"Authorization": "Bearer real-key"},
        json={
            "item_id": "real-new",
            "title": "a new dragon",
            "tags": [{"text": "dragon", "lang": "en"}],
            "image": base64.b64encode(image).decode(),
        },
    )
    assert new.status_code == 201, new.text
    cold = client.post("/v1/recommend", json={"user_id": "brand-new-user", "k": 30}).json()
    assert "real-new" in [i["item_id"] for i in cold["items"]]
