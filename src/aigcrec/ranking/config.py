"""Configuration of the ranking stage (a section of ``AppConfig``).

Defaults follow the UMAIR-FPS authors' code (DESIGN.md section 2): 8-d sparse embeddings, towers
[128, 64], modality projections to 64, DCN-Mix (low rank 32, 4 experts, 2 layers) beside a DNN
[64, 32, 16] (dropout 0.5; the authors stack the two), Adam 1e-3. The batch size is larger than their
128 to keep CPU runs short. Departures from their code are named in each field's description.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aigcrec.config_base import StrictModel

CrossKind = Literal["full", "low_rank", "mix"]
Structure = Literal["crossnet_only", "stacked", "parallel", "stacked_parallel"]
Contribution = Literal["attention", "senet", "mixture", "concat"]
ContextSelect = Literal["all", "anova"]


class ModelConfig(StrictModel):
    """Architecture shared by UMAIR-FPS and the deep baselines."""

    embedding_dim: int = Field(8, ge=1, description="Width of every sparse-field embedding.")
    tower_units: list[int] = Field(default_factory=lambda: [128, 64], description="User / item sparse towers.")
    modality_dim: int = Field(64, ge=1, description="Each modality vector is projected to this width (ReLU).")
    modality_dropout: float = Field(
        0.2, ge=0.0, lt=1.0,
        description="UMAIR-FPS: dropout on each projected modality vector m_k (training only; not in the "
                    "authors' code). With the content profile (history 50) and the parallel structure: MovieLens "
                    "warm 0.7934 ± 0.0003 vs 0.7922 / 0.7902 without (seeds 0 / 1); see docs/ranking.md.")
    contribution: Contribution = Field("attention", description="UMCM variant; 'concat' is the ablation.")
    attention_scale: bool = Field(
        True, description="UMCM: divide the scores by sqrt(D_m), α = softmax(q Mᵀ / sqrt(D_m)) (not in the authors' "
                          "code, whose softmax takes the raw dot products; false = the paper).")
    cross_kind: CrossKind = "mix"
    cross_layers: int = Field(2, ge=0, description="0 removes the cross network (the 'without DCN' ablation).")
    low_rank: int = Field(32, ge=1)
    num_experts: int = Field(4, ge=1)
    structure: Structure = Field(
        "parallel",
        description="How the cross network and the DNN combine. The authors stack them; parallel (as FuxiCTR's "
                    "and DeepCTR-Torch's DCN-V2) scored higher for UMAIR-FPS with the content profile on "
                    "MovieLens and the default world (docs/ranking.md).")
    dnn_units: list[int] = Field(default_factory=lambda: [64, 32, 16])
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    context_init_std: float = Field(
        0.3, gt=0.0,
        description="UMAIR-FPS: the explicit context group's embedding rows start at N(0, this²) (the other fields "
                    "at 1e-4: at that scale the context stayed unused on tests/test_context.py's mood set). "
                    "Measured on the context-aware sets in docs/ranking.md.")
    fm_cross: bool = Field(
        False,
        description="UMAIR-FPS: add a factorization-machine second-order term over its field embeddings (user, item, "
                    "explicit context and the other fields; Rendle's Σ_{i<j} <v_i, v_j>, ``layers.FMInteraction``) to "
                    "the logit. benchmarks/ranking_context.yaml turns it on (incarmusic without context 0.8358 vs 0.8250, 5 "
                    "seeds; depaulmovie with its kept columns 0.7880 vs 0.7783). Off by default: "
                    "MovieLens warm, 5 seeds side by side, test AUC 0.7954 with it vs 0.7969 without "
                    "(benchmarks/results/ranking-movielens-fm-cross-recheck/; docs/ranking.md).")
    affect_dim: int = Field(16, ge=1, description="Projection of the affect context entering the cross net.")
    use_modalities: list[str] = Field(
        default_factory=lambda: ["e_sem", "e_sty", "e_tsem"],
        description="Pretrained item vectors stacked with the item-id tower in UMCM (ablations drop some).",
    )
    use_affect: bool = Field(True, description="Feed the affect context (if the data has one) to the user side.")
    history_len: int = Field(
        200, ge=1, description="The user's most recent earlier positive items a content profile averages. On "
                               "MovieLens (warm, seed 0) 20 / 50 / 200 items gave 0.7883 / 0.7934 / 0.7942 AUC "
                               "(200 over 3 seeds: 0.7962): a long-term taste needs the long history.")
    use_history: bool = Field(
        True, description="UMAIR-FPS: feed the user's content profile (the mean of each used modality's vectors "
                          "over the user's earlier positive items, a ``history`` field) to the user side.")
    match: bool = Field(
        True, description="UMAIR-FPS: add explicit match terms to the cross network's input: each candidate "
                          "modality vector times the user's profile of that modality, and times the projected "
                          "affect context (false: the cross network alone has to learn those products).")
    cross_fields: bool = Field(
        True,
        description="Also feed the flattened sparse-field embeddings to the cross network, z = [e_MM; e_u; a; E], "
                    "as tabular DCN-V2 does (a departure from the paper's z = [e_MM; e_u]; false = the paper). "
                    "MovieLens warm (seed 0, history 50): 0.7934 with them, 0.7883 without; on the worlds the "
                    "field crosses overfit, so their configs (benchmarks/ranking_world.yaml, the demo's) set false.",
    )


class TrainConfig(StrictModel):
    """Mini-batch training from precomputed tensors."""

    batch_size: int = Field(1024, ge=1, description="Rows per optimisation step (at most; see min_steps_per_epoch).")
    min_steps_per_epoch: int = Field(
        16, ge=1,
        description="Small data: the batch shrinks to ceil(N_train / this) when a batch of batch_size would give an "
                    "epoch fewer steps (``TrainConfig.batch_for``; every model, ours and the peers). Patience counts "
                    "epochs, so on the context-aware sets (3,200-4,000 training rows, 4 steps of 1,024 an epoch) "
                    "patience 4 was 16 steps and stopped UMAIR-FPS on the plateau before the interactions take off "
                    "(depaulmovie seed 3: test AUC 0.619 at epoch 2; 0.775 with batch 256). MovieLens (78 steps) "
                    "is unchanged; the world configs set 1 (their tables were measured at 1,024). 1 = always "
                    "batch_size. benchmarks/results/ranking-context-diagnosis/, docs/ranking.md.")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    max_epochs: int = Field(20, ge=1)
    patience: int = Field(
        4, ge=1, description="Epochs without a better validation AUC before stopping (shared with the peers). "
                             "DCN-V2 on MovieLens often sits 3-8 epochs on a plateau before the field "
                             "interactions take off; 2 stopped some seeds there.")
    id_dropout: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="Probability of replacing an item-side id by the unknown index in training, so the "
                    "model learns what to do with items it has never seen (cold start).",
    )
    threads: int = Field(1, ge=0, description="torch intra-op threads (0 = torch's default); one thread keeps "
                                               "throughput figures comparable on a shared machine.")
    profile_cache_mb: float = Field(
        1024.0, ge=0.0,
        description="UMAIR-FPS with frozen content tables: the raw content profile of each distinct history in a "
                    "dataset is computed once before training (``trainer.with_profiles``) when the profiles take at "
                    "most this many MiB (MovieLens warm: 25,444 distinct training histories x 2,400 values, 233 MiB); "
                    "else they are pooled from the history rows in every batch (slower, no memory). 0 = always pool.")


    def batch_for(self, n_train: int) -> int:
        """The batch size for ``n_train`` training rows: ``min(batch_size, ceil(n_train / min_steps_per_epoch))``."""
        return max(1, min(self.batch_size, -(-int(n_train) // self.min_steps_per_epoch)))


class RankingConfig(StrictModel):
    """Settings of the ranking stage."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], description="Seeds of benchmarks (mean ± std).")
    split_seed: int = Field(0, description="Seed choosing the cold items; fixed so every model sees one split.")
    cold_item_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    demo_max_epochs: int = Field(8, ge=1, description="Epoch cap of the demo's models.")
    context_select: ContextSelect = Field(
        "all",
        description="Context benchmark (``--dataset context``): which of the chosen context columns the models "
                    "'with context' read, decided per split and seed on the training rows only. 'all': every "
                    "column; 'anova': the columns whose rating differs across their non-missing values on the "
                    "training rows, by a one-way ANOVA (main effect) or a within-item F test (main effect or item x "
                    "value interaction), p < 0.05 / (2 x number of columns) (``context_benchmark.select_context``; "
                    "none kept = the model without context). Applies to UMAIR-FPS (FM and the peers read every column: "
                    "the issue's 'peer with context'); the kept columns are recorded per seed. docs/ranking.md.")
    context_gate: bool = Field(
        False,
        description="Context benchmark: UMAIR-FPS 'with context' is, per split and seed, its run with the (selected) "
                    "context or its run without it, whichever has the better best validation score (AUC; -RMSE for "
                    "ratings); the test rows are not looked at. The run with the context on every seed is reported "
                    "as umair_fps_ungated. docs/ranking.md.")
