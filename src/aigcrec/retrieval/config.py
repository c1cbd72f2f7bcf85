"""Configuration of the retrieval stage (a section of ``AppConfig``): the two-tower candidate model.

The blend of candidate sources by intent is a serving decision and lives in ``ServiceConfig.retrieval``.
"""

from __future__ import annotations

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
        512, ge=0, description="Extra negatives per step drawn uniformly from the whole catalog (mixed negative "
                               "sampling): in-batch negatives are only items someone clicked.")
    epochs: int = Field(25, ge=1, le=1000)
    batch_size: int = Field(512, ge=2, description="Positives per step; the other rows' items are the negatives.")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    threads: int = Field(
        1, ge=1, description="torch intra-op threads while training (on a shared machine 2 threads ran 12x slower "
                              "per step than 1: 823 vs 68 ms at load 14 on 2 cores)."
    )


class RetrievalStageConfig(StrictModel):
    """Settings of the retrieval stage: the two-tower model ``aigcrec build`` and the demo train."""

    enabled: bool = Field(True, description="Train the two-tower model in `aigcrec build` and the demo.")
    two_tower: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
