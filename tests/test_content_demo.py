"""The content demo stage on the tiny world: feature store artifact, headline metrics, neighbour strips."""

from __future__ import annotations

from aigcrec.config import AppConfig
from aigcrec.content.store import FeatureStore
from aigcrec.demo import DemoContext
from aigcrec.report import Report


def test_content_demo_stage(tiny_world, tiny_sentence_model, tmp_path):
    from aigcrec.demo import content as demo

    config = AppConfig.model_validate({"content": {
        "image": {"backbone": "random:tiny", "image_size": 64, "style_layers": [0, 1], "runtime": "torch"},
        "text": {"model": str(tiny_sentence_model)}}})
    ctx = DemoContext(config=config, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", report=Report("t"),
                      artifacts={"world_dir": str(tiny_world)})
    demo.run(ctx)
    store = FeatureStore(ctx.artifacts["feature_store"])
    assert {"e_sem", "e_sty", "e_tsem"} <= set(store.names)
    metrics = ctx.metrics["content"]
    for key in ("style_p_at_10_e_sty", "style_p_at_10_e_sem", "subject_p_at_10_e_sem", "text_recall_at_1_after"):
        assert 0.0 <= metrics[key] <= 1.0
    html = ctx.report.to_html()
    assert html.count("data:image/png") == 6  # 3 queries by style + 3 by subject
    # second run: everything comes from the cache
    ctx2 = DemoContext(config=config, run_dir=tmp_path / "run2", cache_dir=tmp_path / "cache", report=Report("t"),
                       artifacts={"world_dir": str(tiny_world)})
    demo.run(ctx2)
    assert FeatureStore(ctx2.artifacts["feature_store"]).manifest["last_run"]["images_encoded"] == 0
    assert ctx2.metrics["content"]["style_p_at_10_e_sty"] == metrics["style_p_at_10_e_sty"]
