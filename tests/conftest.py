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
