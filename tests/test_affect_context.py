"""The typed affect-context contract (``aigcrec.data.affect_context``): the schema written with the training
frame, saved in the ranker bundle and checked by name against the affect model when the service starts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aigcrec.affect.state import AffectState
from aigcrec.data.affect_context import (
    AFFECT_CONTEXT_VERSION,
    AffectContextMismatch,
    AffectContextSchema,
    read_affect_context,
    write_affect_context,
)
from aigcrec.data.schemas import EMOTIONS

INTENTS = ["explore", "find_specific", "relax"]


def _state(emotion="sadness", intent="relax", dim=4, used=("text", "face"), labels=INTENTS) -> AffectState:
    emo = {e: (0.7 if e == emotion else 0.05) for e in EMOTIONS}
    intents = {i: (0.8 if i == intent else 0.1) for i in labels}
    return AffectState(emotion, emo, intent, intents, np.arange(dim, dtype=np.float32) / 10, 0.7, list(used))


class _Predictor:
    """An affect model that states its reading's schema (as ``AffectPredictor.context_schema`` does)."""

    def __init__(self, intents=INTENTS, dim=4) -> None:
        self.context_schema = AffectContextSchema.mmei_state(intents, dim)



def test_named_layouts_are_recognised_by_their_column_names():
    mmei = AffectContextSchema.mmei_state(INTENTS, 4)
    assert mmei.columns[:8] == (*[f"emotion_p_{e}" for e in EMOTIONS], "intent_p_explore")
    assert mmei.columns[-5:] == ("emb_3", "confidence", "uses_text", "uses_voice", "uses_face")
    for schema in (mmei, AffectContextSchema.served_state(INTENTS), AffectContextSchema.session_state(INTENTS)):
        assert AffectContextSchema.from_columns(schema.columns) == schema
        assert AffectContextSchema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    assert AffectContextSchema.from_columns(["a0", "a1"]).name == "custom"
    reordered = AffectContextSchema.from_columns(list(reversed(mmei.columns)))
    assert reordered.name == "custom"  # the order is part of a layout
    with pytest.raises(ValueError, match="newer version"):
        AffectContextSchema.from_dict({**mmei.to_dict(), "version": AFFECT_CONTEXT_VERSION + 1})


def test_states_are_encoded_by_name_in_the_schemas_order():
    state = _state()
    row = AffectContextSchema.mmei_state(INTENTS, 4).encode(state)
    assert row[EMOTIONS.index("sadness")] == pytest.approx(0.7)
    assert row[7 + INTENTS.index("relax")] == pytest.approx(0.8)
    assert row[10:14] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert list(row[-4:]) == pytest.approx([0.7, 1.0, 0.0, 1.0])  # confidence, text, voice (not used), face
    oracle = AffectContextSchema.session_state(INTENTS).encode(state)  # the one-hot's expected value
    assert oracle[EMOTIONS.index("sadness")] == pytest.approx(0.7) and len(oracle) == 10
    shuffled = AffectContextSchema("custom", ("confidence", "intent_p_relax", "emotion_p_joy"))
    assert list(shuffled.encode(state)) == pytest.approx([0.7, 0.8, 0.05])
    with pytest.raises(AffectContextMismatch, match="no intent 'shop'"):
        AffectContextSchema("custom", ("intent_p_shop",)).encode(state)


def test_states_frame_writes_the_mmei_schema_and_parquet_records_it(tmp_path):
    from aigcrec.affect.predictor import states_frame

    frame = states_frame(["s1", "s2"], [_state(), _state("joy", "explore")])
    schema = AffectContextSchema.mmei_state(INTENTS, 4)
    assert tuple(frame.columns) == schema.columns and frame.index.name == "session_id"
    path = write_affect_context(frame, schema, tmp_path / "affect.parquet")
    back, read = read_affect_context(path)
    assert read == schema and back.index.tolist() == ["s1", "s2"]
    assert np.allclose(back.to_numpy(), frame.to_numpy())
    back.reset_index().to_csv(tmp_path / "affect.csv", index=False)  # no metadata: the columns are the schema
    assert read_affect_context(tmp_path / "affect.csv")[1] == schema
    with pytest.raises(AffectContextMismatch, match=r"missing \[emb_3\]"):
        write_affect_context(frame.drop(columns=["emb_3"]), schema, tmp_path / "bad.parquet")


def test_a_ranker_is_servable_only_from_an_affect_model_that_gives_its_columns_by_name():
    mmei = AffectContextSchema.mmei_state(INTENTS, 4)
    mmei.check_servable(mmei)
    AffectContextSchema.session_state(INTENTS).check_servable(mmei)  # the one-hot from the probabilities
    AffectContextSchema.served_state(INTENTS).check_servable(mmei)
    with pytest.raises(AffectContextMismatch, match=r"does not give: \[intent_find_specific\]"):
        AffectContextSchema.session_state(["explore", "find_specific", "relax"]).check_servable(
            AffectContextSchema.mmei_state(["explore", "relax"], 4))
    with pytest.raises(AffectContextMismatch, match="intent labels differ"):
        AffectContextSchema.session_state(["explore", "relax"]).check_servable(mmei)
    with pytest.raises(AffectContextMismatch, match=r"emb_4, emb_5"):
        AffectContextSchema.mmei_state(INTENTS, 6).check_servable(mmei)
    with pytest.raises(AffectContextMismatch, match=r"no affect model computes.*\[a0, a1\]"):
        AffectContextSchema("custom", ("a0", "a1")).check_servable(mmei)


@pytest.fixture(scope="module")
def oracle_bundle(tiny_world, tmp_path_factory):
    """A one-epoch UMAIR-FPS ranker of the tiny world, trained on the world's session state (the oracle)."""
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.config import ModelConfig, TrainConfig
    from aigcrec.ranking.data import warm_split, world_dataset
    from aigcrec.ranking.experiment import prepare, run_variant
    from aigcrec.world import load_world

    ids = load_world(tiny_world, check_files=False).items["item_id"].tolist()
    rng = np.random.default_rng(0)
    vectors = {m: (ids, rng.normal(size=(len(ids), 4)).astype(np.float32)) for m in ("e_sem", "e_sty", "e_tsem")}
    data = world_dataset(tiny_world, vectors)
    prep = prepare(data, warm_split(data.frame))
    cfg = ModelConfig(embedding_dim=4, tower_units=[8], modality_dim=4, low_rank=2, num_experts=2, dnn_units=[8])
    result = run_variant(prep, "umair_fps", cfg, TrainConfig(max_epochs=1, batch_size=512), 0)
    out = tmp_path_factory.mktemp("oracle") / "ranker"
    RankerBundle.from_training("umair_fps", result.model, data.frame.iloc[prep.rows["train"]]).save(out)
    return out


def test_the_bundle_saves_its_affect_schema_and_the_service_checks_it(oracle_bundle, tiny_world):
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.service.assemble import affect_encoder
    from aigcrec.world import load_world

    bundle = RankerBundle.load(oracle_bundle)
    intents = sorted(load_world(tiny_world, check_files=False).sessions["intent"].unique())
    assert bundle.affect_schema == AffectContextSchema.session_state(intents)
    assert json.loads((oracle_bundle / "config.json").read_text())["affect_context"]["name"] == "session_state"
    encode = affect_encoder(bundle, _Predictor(intents))
    row = encode(_state(intent="relax", labels=intents))
    assert row.shape == (7 + len(intents),) and row[7 + intents.index("relax")] == pytest.approx(0.8)
    with pytest.raises(AffectContextMismatch, match="does not give"):
        affect_encoder(bundle, _Predictor(["chat", "shop"]))


def test_a_schema_mismatch_stops_the_start_with_the_columns(oracle_bundle, tmp_path):
    from aigcrec.config import AppConfig
    from aigcrec.service.assemble import ServicePaths, open_real_state

    paths = ServicePaths(tmp_path / "no-catalog", tmp_path / "no-features", oracle_bundle)
    with pytest.raises(AffectContextMismatch, match=r"intent_\w+.*Retrain the ranker"):
        open_real_state(AppConfig(), paths, tmp_path / "s.sqlite", affect=_Predictor(["chat", "shop"]))


def test_a_bundle_saved_before_schemas_is_refused_beside_an_affect_model(oracle_bundle, tmp_path):
    import shutil

    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.service.assemble import affect_encoder

    old = tmp_path / "old"
    shutil.copytree(oracle_bundle, old)
    info = json.loads((old / "config.json").read_text())
    del info["component"], info["format"]
    info["format_version"] = 2  # as format 2 bundles were saved: ranker.json, no aigcrec.saved header
    (old / "config.json").unlink()
    info.pop("affect_context")
    for f in info["spec"]["fields"]:
        f.pop("affect_schema", None)
    (old / "ranker.json").write_text(json.dumps(info))
    bundle = RankerBundle.load(old)  # it still loads and scores
    assert bundle.affect_schema is None and len(bundle.score("u0", [bundle.items["item_id"].iloc[0]])[0]) == 1
    with pytest.raises(AffectContextMismatch, match="records no schema.*Retrain the ranker"):
        affect_encoder(bundle, _Predictor())
    assert affect_encoder(bundle, None)(_state()) is None  # no affect model: nothing to read, nothing guessed


def test_a_custom_affect_table_trains_and_is_refused_beside_an_affect_model(tiny_world):
    from aigcrec.ranking.data import world_dataset
    from aigcrec.world import load_world

    w = load_world(tiny_world, check_files=False)
    table = pd.DataFrame(np.random.default_rng(0).random((len(w.sessions), 3)), columns=["a0", "a1", "a2"],
                         index=w.sessions["session_id"].astype(str))
    data = world_dataset(tiny_world, {}, table)
    field = next(f for f in data.fields if f.name == "affect")
    assert field.affect_schema == {"name": "custom", "version": AFFECT_CONTEXT_VERSION, "columns": ["a0", "a1", "a2"]}
    with pytest.raises(AffectContextMismatch, match="no affect model computes"):
        AffectContextSchema.from_dict(field.affect_schema).check_servable(AffectContextSchema.mmei_state(INTENTS, 4))
