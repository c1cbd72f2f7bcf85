"""Configuration of the retrieval stage (a section of ``AppConfig``): the two-tower candidate model.

The blend of candidate sources by intent is a serving decision and lives in ``ServiceConfig.retrieval``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aigcrec.config_base import StrictModel


class TwoTowerConfig(StrictModel):
    """Architecture and training of the two-tower retrieval model (``aigcrec.retrieval.model``)."""

    dim: int = Field(64, ge=4, description="Width of the user and item vectors (the FAISS index's width).")
    content_width: int = Field(
        256, ge=0, description="PCA width of the towers' content input (e_SEM, e_STY, e_TSEM concatenated, "
                               "each block unit-normalised); 0 keeps the whole concatenation.")
    hidden: int = Field(256, ge=8, description="Hidden width of both towers' MLPs.")
    id_dim: int = Field(
        64, ge=1, description="Item-id embedding width (added to the item tower; dropped for unknown items)."
    )
    history_residual: bool = Field(
        True, description="Add the item tower's content MLP of the pooled history to the user tower's output "
                          "(the user starts near items like their positives; model.py).")
    content_skip: bool = Field(
        True, description="Both vectors also carry the raw content direction (learned weight): the score adds the "
                          "item's content cosine to the user's pooled history (model.py); vectors are then "
                          "content_width + dim wide.")
    history_ids: bool = Field(
        True, description="The user tower adds the mean of a history-id embedding over the user's last positives "
                          "(collaborative signal; model.py). Off: the history enters through its content only.")
    user_feature_dim: int = Field(8, ge=1, description="Embedding width of each categorical user feature.")
    history_len: int = Field(50, ge=1, description="Most recent positives pooled into the user tower's history.")
    temperature: float = Field(0.1, gt=0, description="tau of the softmax over cosine similarities.")
    id_dropout: float = Field(
        0.2, ge=0, le=1, description="Training: share of rows whose item id is dropped (the tower of new items)."
    )
    context_dropout: float = Field(
        0.2, ge=0, le=1, description="Training: share of rows served without affect context (requests without signals)."
    )
    uniform_negatives: int = Field(
        512, ge=0, description="Extra negatives per step drawn uniformly (from negatives_from; mixed negative "
                               "sampling): in-batch negatives are only items someone clicked.")
    negatives_from: Literal["shown", "liked", "catalog"] = Field(
        "shown", description="Where the uniform negatives are drawn: 'shown', the items with any row in the "
        "training interactions (liked or not; the liked ones where the data holds positives only); 'liked', "
        "the items with a training positive; 'catalog', every catalog row. An item outside that set (held out, "
        "or new: never shown) is ranked from its content as an item added later is; as a negative with no "
        "positive to balance it, the content path learns to sink it: with 'catalog', MovieLens' held-out "
        "items' test positives fell to the bottom of the list (benchmarks/results/topk-cold-fusion-movielens/).")
    epochs: int = Field(25, ge=1, le=1000)
    batch_size: int = Field(512, ge=2, description="Positives per step; the other rows' items are the negatives.")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    threads: int = Field(
        1, ge=1, description="torch intra-op threads while training (on a shared machine 2 threads ran 12x slower "
                              "per step than 1: 823 vs 68 ms at load 14 on 2 cores)."
    )


class CollabConfig(StrictModel):
    """The item-item candidate model (EASE^R closed form, ``aigcrec.retrieval.collab``)."""

    enabled: bool = Field(True, description="Compute it in `aigcrec build` (from the catalog's positives).")
    lam: float = Field(
        500.0, gt=0, description="EASE's L2 weight lambda (G = X^T X + lambda I); 500 with half_life 20 was the best "
                                 "of lambda 100-1000 x half_life 0/20 on MovieLens validation (docs/topk.md).")
    neighbours: int = Field(
        1000, ge=1, description="Weights kept per item (largest |B_ij|); >= n - 1 stores the exact B. Memory "
                                "and request cost grow with n x neighbours.")
    max_items: int = Field(
        20_000, ge=2, description="Largest catalog the closed form is computed for (O(n^3) time, n^2 float64 "
                                  "memory: 3.2 GB at 20k); above it the build skips the source.")
    history_len: int = Field(1000, ge=1, description="Most recent live positives in the user's query row.")
    half_life: float = Field(
        20.0, ge=0, description="Query weight 0.5 ** (age / half_life) of a positive, age counted in positives "
                                "from the newest; 0: every positive weighs 1 (the paper's x_u).")
    min_positives: int = Field(100, ge=1, description="Fewer training positives: the build skips the source.")


class RetrievalStageConfig(StrictModel):
    """Settings of the retrieval stage: the two-tower model ``aigcrec build`` and the demo train."""

    enabled: bool = Field(True, description="Train the two-tower model in `aigcrec build` and the demo.")
    two_tower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    collab: CollabConfig = Field(default_factory=CollabConfig)
