"""The served-list log: every response's request_id, list and derived context in the event log; feedback
naming it; ``train ranker --events`` rebuilding impressions with the context they were served in; and no
raw face, voice or utterance text anywhere in the database."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aigcrec.data.affect_context import AffectContextSchema  # noqa: E402
from aigcrec.data.schemas import EMOTIONS  # noqa: E402
from aigcrec.service.app import create_app  # noqa: E402
from aigcrec.service.store import ServiceStore, served_from_db  # noqa: E402
from test_service_support import open_state, png_bytes, wav_bytes  # noqa: E402

AUTH = {"Authorization": "Bearer test-key"}
WORLD_INTENTS = ["explore", "find_specific", "get_inspired", "relax", "share"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture()
def client(tmp_path):
    state = open_state(tmp_path / "s.sqlite", n_items=80)
    with TestClient(create_app(state)) as c:
        c.db = tmp_path / "s.sqlite"
        yield c


def test_each_response_has_a_request_id_and_its_list_and_context_are_logged(client):
    r = client.post("/v1/recommend", json={"user_id": "u1", "k": 5, "signals": {"text": "so happy"}})
    assert r.status_code == 200, r.text
    body = r.json()
    rid = body["request_id"]
    assert len(rid) == 32 and int(rid, 16) >= 0
    other = client.post("/v1/recommend", json={"user_id": "u1", "k": 5}).json()
    assert other["request_id"] != rid
    db = sqlite3.connect(client.db)
    row = db.execute("SELECT user_id, emotion, intent, confidence, emotion_probs, intent_probs, modalities_used, "
                     "cold_start FROM served WHERE request_id = ?", (rid,)).fetchone()
    assert row[:4] == ("u1", "joy", "relax", pytest.approx(0.7))
    assert json.loads(row[4]) == body["explanation"]["affect"]["emotion_probs"]
    assert json.loads(row[5]) == body["explanation"]["affect"]["intent_probs"]
    assert json.loads(row[6]) == ["text"] and row[7] == 1
    items = db.execute("SELECT position, item_id, score, source FROM served_items WHERE request_id = ? "
                       "ORDER BY position", (rid,)).fetchall()
    assert [(p, i) for p, i, _, _ in items] == [(n, it["item_id"]) for n, it in enumerate(body["items"])]
    assert [(sc, src) for _, _, sc, src in items] == [(pytest.approx(it["score"]), it["source"]) for it in body["items"]]
    blind = db.execute("SELECT emotion, emotion_probs FROM served WHERE request_id = ?", (other["request_id"],)).fetchone()
    assert blind == (None, None)  # no signals: no reading, nothing made up


def test_feedback_names_the_request_id_and_is_checked_against_the_logged_list(client):
    body = client.post("/v1/recommend", json={"user_id": "u2", "k": 4}).json()
    rid, first = body["request_id"], body["items"][0]["item_id"]
    served = {it["item_id"] for it in body["items"]}
    outside = next(f"i{n}" for n in range(80) if f"i{n}" not in served)
    events = [
        {"user_id": "u2", "item_id": first, "type": "click", "request_id": rid},
        {"user_id": "u3", "item_id": first, "type": "click", "request_id": rid},
        {"user_id": "u2", "item_id": outside, "type": "click", "request_id": rid},
        {"user_id": "u2", "item_id": first, "type": "bookmark", "request_id": "0" * 32},
    ]
    r = client.post("/v1/feedback", headers=AUTH, json={"events": events})
    assert r.status_code == 200, r.text
    ack = r.json()
    assert ack["accepted"] == 1
    reasons = {x["index"]: x["reason"] for x in ack["rejected"]}
    assert "another user" in reasons[1] and "not in the list" in reasons[2] and "unknown request_id" in reasons[3]
    stored = sqlite3.connect(client.db).execute(
        "SELECT user_id, item_id, type, request_id FROM events WHERE origin = 'api'").fetchall()
    assert stored == [("u2", first, "click", rid)]  # the round trip
    bad = client.post("/v1/feedback", headers=AUTH, json={"user_id": "u2", "item_id": first, "type": "click",
                                                          "request_id": "not-an-id"})
    assert bad.status_code == 422 and "request_id" in bad.text


def test_served_impressions_are_rebuilt_with_their_context(client):
    happy = client.post("/v1/recommend", json={"user_id": "u4", "k": 3, "signals": {"text": "happy"},
                                               "exclude_seen": False}).json()
    sad = client.post("/v1/recommend", json={"user_id": "u4", "k": 3, "signals": {"text": "sad", "face": b64(png_bytes())},
                                             "exclude_seen": False}).json()
    named, unnamed = happy["items"][1]["item_id"], sad["items"][2]["item_id"]
    client.post("/v1/feedback", headers=AUTH, json={"events": [
        {"user_id": "u4", "item_id": named, "type": "click", "request_id": happy["request_id"]},
        {"user_id": "u4", "item_id": unnamed, "type": "bookmark"},  # no request_id: the latest list before it
        {"user_id": "u4", "item_id": "i79", "type": "bookmark"}]})  # never served: a plain event row
    served = served_from_db(client.db)
    frame = served.frame
    assert served.schema == AffectContextSchema.served_state(["explore", "relax", "focus"])
    rows = frame[frame["request_id"].notna()].set_index(["request_id", "item_id"])
    assert len(rows) == 6 and rows["label"].sum() == 2
    assert rows.loc[(happy["request_id"], named), "label"] == 1
    assert rows.loc[(sad["request_id"], unnamed), "label"] == 1
    assert rows.loc[(happy["request_id"], happy["items"][0]["item_id"]), "label"] == 0  # served, not clicked
    assert rows.xs(sad["request_id"])["emotion_p_sadness"].tolist() == pytest.approx([0.7] * 3)
    assert set(rows.xs(happy["request_id"])["uses_face"]) == {0.0}
    assert set(rows.xs(sad["request_id"])["uses_face"]) == {1.0}
    plain = frame[frame["request_id"].isna()]
    assert plain[["user_id", "item_id", "label"]].values.tolist() == [["u4", "i79", 1]]
    assert served.affect.loc[sad["request_id"], "emotion_p_sadness"] == pytest.approx(0.7)


def _strings_of(value) -> list[bytes]:
    if isinstance(value, bytes):
        return [value]
    return [] if value is None else [str(value).encode("utf-8")]


def test_no_raw_face_voice_or_utterance_text_reaches_the_database(client, caplog):
    utterance = "Quokka-zebra 7781: feeling wistful about my grandmother's lighthouse"
    face = png_bytes((17, 203, 91), size=(40, 40))
    voice = wav_bytes(0.4)
    signals = {"text": utterance, "voice": b64(voice), "face": b64(face)}
    caplog.set_level("DEBUG")
    for user in ("p1", "p2"):
        r = client.post("/v1/recommend", json={"user_id": user, "k": 5, "signals": signals,
                                               "context": None})
        assert r.status_code == 200, r.text
        assert r.json()["explanation"]["affect"]["modalities_used"] == ["text", "voice", "face"]
    assert client.post("/v1/affect", json={"signals": signals}).status_code == 200
    client.post("/v1/feedback", headers=AUTH, json={"user_id": "p1", "item_id": r.json()["items"][0]["item_id"],
                                                    "type": "click", "request_id": r.json()["request_id"]})
    needles = {
        "utterance": utterance.encode("utf-8"), "utterance words": b"Quokka-zebra", "lighthouse": b"lighthouse",
        "face bytes": face[-64:-16], "face base64": b64(face)[40:100].encode(), "voice samples": voice[-400:-300],
        "voice base64": b64(voice)[200:260].encode(),
    }
    db = sqlite3.connect(client.db)
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert {"served", "served_items", "events"} <= set(tables)
    cells = [s for t in tables for row in db.execute(f"SELECT * FROM {t}") for v in row for s in _strings_of(v)]
    assert any(b"served" in c or b"fresh" in c or b"popular" in c for c in cells)  # the scan sees the log
    for name, needle in needles.items():
        assert not any(needle in c or needle.lower() in c.lower() for c in cells), f"{name} found in a table"
    db.close()
    files = [p for p in Path(client.db).parent.iterdir() if p.name.startswith(Path(client.db).name)]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:  # the database, its WAL and shared-memory files, byte by byte
        data = path.read_bytes()
        for name, needle in needles.items():
            assert needle not in data and needle.lower() not in data.lower(), f"{name} found in {path.name}"
    assert not any(w in rec.getMessage() for rec in caplog.records for w in ("Quokka", "lighthouse"))


# -- training from the log: the tiny world --------------------------------------------------------------


@dataclass
class WorldAffectState:
    """What a reading of the world's five intents looks like (the test affect model's state)."""

    emotion: str
    emotion_probs: dict[str, float]
    intent: str
    intent_probs: dict[str, float]
    confidence: float
    modalities_used: list[str]
    fusion_weights: dict[str, float] = field(default_factory=dict)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))


class WorldKeywordAffect:
    """Test affect model over the world's intents: a word of the text sets the emotion and the intent."""

    context_schema = AffectContextSchema.mmei_state(WORLD_INTENTS, 4)

    def predict(self, text=None, voice=None, face=None) -> WorldAffectState:
        words = (text or "").lower().split()
        emotion = next((e for e in EMOTIONS if e in words), "neutral")
        intent = next((i for i in WORLD_INTENTS if i in words), "explore")
        used = [m for m, v in (("text", text), ("voice", voice), ("face", face)) if v is not None]
        return WorldAffectState(emotion, {e: 0.76 if e == emotion else 0.04 for e in EMOTIONS}, intent,
                                {i: 0.8 if i == intent else 0.05 for i in WORLD_INTENTS}, 0.76, used)


@pytest.fixture(scope="module")
def world_vectors(tiny_world):
    from aigcrec.world import load_world

    ids = load_world(tiny_world, check_files=False).items["item_id"].astype(str).tolist()
    rng = np.random.default_rng(0)
    return {m: (ids, rng.normal(size=(len(ids), d)).astype(np.float32)) for m, d in (("e_sem", 6), ("e_sty", 5), ("e_tsem", 4))}


@pytest.fixture(scope="module")
def tiny_ranking_config(tmp_path_factory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("cfg") / "ranking.yaml"
    path.write_text(yaml.safe_dump({"ranking": {
        "model": {"embedding_dim": 4, "tower_units": [8], "modality_dim": 4, "low_rank": 2, "num_experts": 2,
                  "dnn_units": [8], "dropout": 0.0},
        "train": {"batch_size": 512, "max_epochs": 1}}}), encoding="utf-8")
    return path


def test_train_ranker_from_events_uses_the_served_context(tiny_world, world_vectors, tiny_ranking_config,
                                                          tmp_path, monkeypatch):
    """Serve the tiny world with a ranker trained on the oracle state, read moods from the text, answer
    the lists, then ``aigcrec train ranker --events``: the new ranker's affect context is the served one."""
    from typer.testing import CliRunner

    from aigcrec.cli.main import app
    from aigcrec.config import AppConfig
    from aigcrec import sources
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.data import warm_split, world_dataset
    from aigcrec.ranking.experiment import prepare, run_variant
    from aigcrec.service.assemble import affect_encoder, read_serving_catalog
    from aigcrec.service.state import ServiceState

    monkeypatch.setattr(sources, "content_vectors", lambda *a, **k: world_vectors)
    cfg = AppConfig.model_validate(__import__("yaml").safe_load(tiny_ranking_config.read_text()))
    data = world_dataset(tiny_world, world_vectors)
    prep = prepare(data, warm_split(data.frame))
    result = run_variant(prep, "umair_fps", cfg.ranking.model, cfg.ranking.train, 0)
    bundle = RankerBundle.from_training("umair_fps", result.model, data.frame.iloc[prep.rows["train"]])
    affect = WorldKeywordAffect()
    _, items, events = read_serving_catalog(tiny_world)
    pos = {i: n for n, i in enumerate(world_vectors["e_sem"][0])}
    vectors = {m: mat[[pos[str(it["item_id"])] for it in items]] for m, (_, mat) in world_vectors.items()}
    cfg.service.api_key = "test-key"
    db = tmp_path / "service.sqlite"
    state = ServiceState.open(cfg.service, ServiceStore(db), items, vectors, bundle, affect,
                              past_events=events, affect_context=affect_encoder(bundle, affect))
    users = sorted({e["user_id"] for e in events})[:12]
    moods = [("joy", "explore"), ("sadness", "relax"), ("anger", "find_specific"), ("fear", "share")]
    with TestClient(create_app(state)) as c:
        for n, user in enumerate(users):
            emotion, intent = moods[n % len(moods)]
            body = c.post("/v1/recommend", json={"user_id": user, "k": 8,
                                                 "signals": {"text": f"{emotion} {intent}"}}).json()
            picks = body["items"][: 1 + n % 3]
            r = c.post("/v1/feedback", headers=AUTH, json={"events": [
                {"user_id": user, "item_id": it["item_id"], "type": "click", "request_id": body["request_id"]}
                for it in picks]})
            assert r.json()["accepted"] == len(picks)
    state.store.close()

    served = served_from_db(db)
    assert len(served.affect) == len(users) and served.schema.name == "served_state"
    from aigcrec.sources import load_dataset

    data = load_dataset("world", tiny_world, tmp_path / "cache", tmp_path, events=db)
    is_served = data.frame["session_id"].isin(served.affect.index)
    assert is_served.sum() == 8 * len(users)  # every served position is an impression ...
    assert data.frame.loc[is_served, "label"].sum() == sum(1 + n % 3 for n in range(len(users)))  # ... clicked = 1
    assert next(f for f in data.fields if f.name == "affect").affect_schema["name"] == "served_state"
    runner = CliRunner()
    res = runner.invoke(app, ["train", "ranker", "--dataset", "world", "--data-dir", str(tiny_world),
                              "--features", str(tmp_path), "--config", str(tiny_ranking_config), "--events", str(db),
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    again = RankerBundle.load(tmp_path / "t" / "ranker")
    assert again.affect_schema == AffectContextSchema.served_state(WORLD_INTENTS)
    keys = again.spec.state["affect"]["keys"]
    assert set(served.affect.index) <= set(keys)  # every served reading is a row of the ranker's table
    table = again.model.tables["affect"].weight.detach().numpy()[1:]  # row 0: unknown context
    assert table.std(axis=0)[[EMOTIONS.index("joy"), EMOTIONS.index("sadness")]].min() > 0.1  # non-constant
    assert again.affect_schema.check_servable(affect.context_schema) is None  # servable beside the model
    assert affect_encoder(again, affect)(affect.predict("sadness relax")).shape == (7 + 5 + 1 + 3,)


def test_a_database_of_an_earlier_version_gets_the_request_id_column(tmp_path):
    db = tmp_path / "old.sqlite"
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, item_id TEXT "
                "NOT NULL, type TEXT NOT NULL, value REAL, ts REAL NOT NULL, session_id TEXT, origin TEXT NOT NULL)")
    old.execute("INSERT INTO events(user_id, item_id, type, ts, origin) VALUES ('u', 'i', 'bookmark', 1.0, 'api')")
    old.commit()
    old.close()
    store = ServiceStore(db)
    store.append_events([{"user_id": "u", "item_id": "j", "type": "click", "request_id": "a" * 32}])
    assert [(e["item_id"], e["request_id"]) for e in store.iter_events()] == [("i", None), ("j", "a" * 32)]
    store.close()
    frame = served_from_db(db).frame  # no list was served: the old rule, one row per (user, item)
    assert sorted(zip(frame["item_id"], frame["label"])) == [("i", 1), ("j", 0)]


def test_a_log_that_cannot_be_written_is_counted_and_the_list_still_answered(client, monkeypatch):
    store = client.app.state.service.store

    def locked(served):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "log_served", locked)
    r = client.post("/v1/recommend", json={"user_id": "u5", "k": 3})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert "aigcrec_served_log_failures_total 1" in client.get("/metrics").text
    ack = client.post("/v1/feedback", headers=AUTH, json={"user_id": "u5", "item_id": r.json()["items"][0]["item_id"],
                                                          "type": "click", "request_id": r.json()["request_id"]})
    assert ack.status_code == 422 and "unknown request_id" in ack.text  # nothing logged: refused, not guessed
