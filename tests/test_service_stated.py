"""The recommend request's explicit affect state (``stated``): merged into the reading, validated, and what
the ranker scores with (the test models of test_service_support, in-process)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aigcrec.service.app import create_app  # noqa: E402
from aigcrec.service.stated import STATED, stated_probabilities  # noqa: E402
from test_service_support import open_state  # noqa: E402


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    state = open_state(tmp_path_factory.mktemp("stated") / "service.sqlite")
    with TestClient(create_app(state)) as c:
        yield c


def recommend(client, **body):
    return client.post("/v1/recommend", json={"user_id": "stated-user", "k": 5, **body})


def test_stated_state_alone_is_the_affect_the_ranker_scores_with(client):
    plain = recommend(client)
    joy = recommend(client, stated={"emotion": "joy", "intent": "relax"})
    assert plain.status_code == 200 and joy.status_code == 200, joy.text
    affect = joy.json()["explanation"]["affect"]
    assert affect["emotion"] == "joy" and affect["intent"] == "relax"
    assert affect["emotion_probs"]["joy"] == 1.0
    assert sum(affect["emotion_probs"].values()) == pytest.approx(1.0)
    assert affect["modalities_used"] == [STATED] and affect["confidence"] == 1.0
    # the test ranker adds P(joy) to every logit: the stated state reached it
    s_plain = np.array([i["score"] for i in plain.json()["items"]])
    s_joy = np.array([i["score"] for i in joy.json()["items"]])
    assert s_joy.min() > s_plain.max()
    assert plain.json()["explanation"]["affect"] is None


def test_stated_part_replaces_the_reading_the_rest_stays(client):
    read = recommend(client, signals={"text": "I am so sad today"}).json()["explanation"]["affect"]
    both = recommend(client, signals={"text": "I am so sad today"}, stated={"intent": "focus"})
    assert both.status_code == 200, both.text
    affect = both.json()["explanation"]["affect"]
    assert read["emotion"] == affect["emotion"] == "sadness"          # not stated: the reading's
    assert affect["emotion_probs"] == read["emotion_probs"]
    assert affect["intent"] == "focus"
    assert affect["intent_probs"] == {"explore": 0.0, "relax": 0.0, "focus": 1.0}
    assert affect["modalities_used"] == ["text", STATED]


def test_stated_probabilities_are_renormalised(client):
    r = recommend(client, stated={"emotion": {"sadness": 0.7, "neutral": 0.3005}})
    assert r.status_code == 200, r.text
    probs = r.json()["explanation"]["affect"]["emotion_probs"]
    assert probs["sadness"] == pytest.approx(0.7 / 1.0005) and sum(probs.values()) == pytest.approx(1.0)
    assert r.json()["explanation"]["affect"]["emotion"] == "sadness"


@pytest.mark.parametrize("stated, field", [
    ({"emotion": "happy"}, "stated.emotion"),                       # not an emotion
    ({"emotion": {"sadness": 0.5, "glee": 0.5}}, "stated"),         # an unknown label among probabilities
    ({"emotion": {"sadness": 0.5, "joy": 0.2}}, "stated"),          # does not sum to 1
    ({"emotion": {"sadness": 1.5}}, "stated.emotion"),              # not a probability
    ({"emotion": {"sadness": "1"}}, "stated.emotion"),              # not a number
    ({}, "stated"),                                                 # nothing stated
    ({"mood": "sad"}, "stated.mood"),                               # an unknown key
])
def test_bad_stated_values_are_422_naming_the_field(client, stated, field):
    r = recommend(client, stated=stated)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.json()["detail"]


def test_an_intent_the_affect_model_does_not_know_is_422_with_the_known_ones(client):
    r = recommend(client, stated={"emotion": "joy", "intent": "share"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "stated.intent" in detail and "'share'" in detail and "focus" in detail


def test_stated_needs_an_affect_model(tmp_path):
    state = open_state(tmp_path / "service.sqlite")
    state.pipeline.affect_model = None
    with TestClient(create_app(state)) as c:
        r = c.post("/v1/recommend", json={"user_id": "u", "stated": {"emotion": "joy"}})
    assert r.status_code == 422 and "no-affect-model" in r.json()["type"], r.text


def test_stated_is_documented_in_openapi(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "stated" in schema["RecommendRequest"]["properties"]
    emotion = schema["StatedAffect"]["properties"]["emotion"]
    assert "sadness" in str(emotion) and "probabilities" in emotion["description"]


def test_stated_probabilities_order_and_unknown_label():
    assert list(stated_probabilities("b", ["a", "b", "c"], "intent")) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"stated\.intent: unknown label 'd'"):
        stated_probabilities({"d": 1.0}, ["a", "b"], "intent")
    assert stated_probabilities(None, ["a"], "intent") is None
