"""Configuration of the affect stage (a section of ``AppConfig``).

Encoder names: ``minilm`` / ``egemaps`` / ``fer-cnn`` are the offline defaults; ``hf:<name or folder>``
loads a Hugging Face model (BERT family for text, Wav2Vec2/HuBERT/WavLM for voice, ViT for face),
which needs the weights in the local cache or ``HF_HUB_OFFLINE=0``.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from aigcrec.config_base import StrictModel


class TextFinetuneConfig(StrictModel):
    """Fine-tuning the offline text encoder (MiniLM) on a benchmark's train split (``aigcrec.affect.finetune_text``).

    Off by default (the world and the demo); the real-data recipes of ``aigcrec benchmark affect``
    (``aigcrec.affect.recipes.REAL_DATA_RECIPES``) turn it on for ``text-emotion`` (MELD) and ``intent``
    (CLINC150). The top ``train_layers`` layers and a linear head on the mean-pooled tokens are trained with
    class-weighted CE; the epoch with the best dev weighted-F1 is kept; one fine-tuned encoder per seed
    (or one shared by all seeds with ``per_seed: false``).
    """

    enabled: bool = False
    train_layers: int = Field(default=2, ge=1, description="Top transformer layers trained (the rest frozen).")
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-4, gt=0, description="AdamW learning rate of the layers (the head uses 10x).")
    weight_decay: float = Field(default=0.01, ge=0)
    class_weighted: bool = Field(default=True, description="CE weights w_c = (n / (C n_c))^0.5, mean-normalised.")
    context_turns: int = Field(default=0, ge=0, description="MELD: encode each utterance with the dialogue's "
                               "preceding utterances as context, the last this many turns, most recent first "
                               "([CLS] utterance [SEP] turn t-1 turn t-2 ... [SEP], the context cut to fit "
                               "max_tokens); 0: the utterance alone.")
    context_speakers: bool = Field(default=True, description="With context_turns: every utterance (the one "
                                   "classified and its context turns) is written 'Speaker: text'.")
    per_seed: bool = Field(default=True, description="Fine-tune one encoder per benchmark seed; False: one "
                           "encoder (fine-tuned with ``seed``) shared by every seed, which then varies the heads only.")
    seed: int = Field(default=0, description="Fine-tuning seed when per_seed is False.")


class FaceTrainConfig(StrictModel):
    """Training a face network ourselves (``aigcrec.affect.face_train``): on FER2013 for the ``face-emotion``
    benchmark, on a world's train-session faces for ``fusion``, ``train mmei`` and the demo.

    Off by default; the ``face-emotion`` recipe of ``aigcrec benchmark affect`` (FER2013,
    ``aigcrec.affect.recipes``), ``benchmarks/affect_world.yaml`` and the demo's config (world) turn it on. The network is trained once (``seed``) on the train split (best dev-accuracy
    epoch kept), its weights cached under the benchmark's ``--cache-dir``, then
    read as ``face-net:<file.pt>`` (``network: face-net``, the VGG-style ``encoders/face_net.py``) or
    ``fer-cnn:<file.pt>`` (``network: fer-cnn``, the packaged CNN's architecture). The defaults are the face-net
    recipe: random affine augmentation (rotation, scale, shift, flip), unweighted CE with label smoothing,
    AdamW with a one-cycle schedule. ``fer-cnn`` keeps its own recipe: class-weighted CE, flips and integer
    pixel shifts (``shift``), optionally from the packaged weights (``init_pretrained``).
    """

    enabled: bool = False
    network: Literal["face-net", "fer-cnn"] = Field(default="face-net", description="Which network is trained.")
    width: int = Field(default=32, ge=4, description="face-net: channels of its first stage (then 2x, 4x, 8x).")
    init_pretrained: bool = Field(default=True, description="fer-cnn: start from the packaged FER2013 weights.")
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=128, ge=1)
    lr: float = Field(default=2e-3, gt=0, description="Peak AdamW learning rate (one-cycle).")
    weight_decay: float = Field(default=5e-4, ge=0)
    warmup: float = Field(default=0.2, gt=0, lt=1, description="face-net: share of steps the one-cycle LR rises.")
    rotate_deg: float = Field(default=10.0, ge=0, description="face-net: random rotation, +- degrees.")
    scale: float = Field(default=0.1, ge=0, lt=1, description="face-net: random zoom, +- this fraction.")
    translate: float = Field(default=0.1, ge=0, lt=1, description="face-net: random shift, +- this fraction of "
                             "half the image side (affine_grid units: 0.1 = 2.4 px at 48 px).")
    shift: int = Field(default=4, ge=0, description="fer-cnn: random shift augmentation, pixels.")
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=1.0)
    bf16: bool = Field(default=True, description="face-net: train under torch.autocast('cpu', bfloat16) when the "
                       "CPU has AMX tiles or AVX512-BF16 (else fp32 anyway); evaluation and features stay fp32.")
    channels_last: bool = Field(default=True, description="face-net: NHWC memory format in training.")
    threads: int = Field(default=2, ge=1, description="torch threads while training (restored afterwards).")
    seed: int = 0


class EncoderConfig(StrictModel):
    """Which encoder reads each modality, and the limits applied to raw inputs."""

    text: str = "minilm"
    voice: str = Field(default="prosody", description="'prosody' (fast NumPy descriptors, the interactive "
                       "default), 'egemaps' / 'egemaps-lld' (afx-audio eGeMAPS v02, ~0.2-0.5 s per clip) or 'hf:'.")
    face: str = "fer-cnn"
    max_tokens: int = Field(default=32, ge=4, le=512, description="Text tokens kept per utterance.")
    sample_rate: int = Field(default=16000, ge=8000, description="Voice is resampled to this rate (Hz).")
    max_seconds: float = Field(default=10.0, gt=0, description="Longer clips are cut to their first seconds.")
    silence_dbfs: float = Field(
        default=-55.0, description="A clip whose RMS level is below this (dB full scale) counts as missing."
    )
    voice_segment_ms: int = Field(default=100, ge=10, description="Voice frames are pooled into segments this long.")
    face_detect: Literal["haar", "none"] = Field(
        default="haar", description="'haar': find and crop the largest face (none found = missing); 'none': the "
        "image is already a face crop (FER2013)."
    )
    face_margin: float = Field(default=0.1, ge=0.0, le=0.5, description="Crop margin around a detected face.")
    face_scale_factor: float = Field(default=1.05, gt=1.0, le=2.0, description="Haar detectMultiScale step.")
    face_min_neighbors: int = Field(default=3, ge=1, description="Haar detections needed to accept a face.")
    face_pad: float = Field(default=1 / 6, ge=0.0, le=1.0, description="Border (edge pixels repeated) added "
                            "around the image before detection, as a fraction of its shorter side, so faces "
                            "that fill the frame are found.")
    text_finetune: TextFinetuneConfig = Field(default_factory=TextFinetuneConfig)
    face_train: FaceTrainConfig = Field(default_factory=FaceTrainConfig)


class MMEIPaperConfig(StrictModel):
    """``mmei_paper``: the BERT-based cross-modal transformer as the MMEI abstract names it
    (``aigcrec.affect.networks.MMEIPaperNetwork``; architecture ``"mmei_paper"`` of ``AffectModel``).

    The top ``layers`` transformer layers of the text encoder are fine-tuned, each followed by a gated
    cross-attention block (queries: the token states; keys/values: the projected voice and face frames); the
    embeddings and lower layers stay frozen, so their token states are computed once from the utterances
    (``aigcrec.affect.tasks.paper_text_features``). Its training uses these fields instead of ``MMEIConfig``'s
    epochs, batch_size, lr and patience (the rest of ``MMEIConfig`` applies: dropout, modality dropout, class
    weights, weight decay, intent weight, threads).
    """

    in_fusion_benchmark: bool = Field(default=False, description="'aigcrec benchmark affect --task fusion' also "
                                      "trains and reports mmei_paper (off by default: it fine-tunes transformer "
                                      "layers, minutes per seed on 2 CPU cores; the CLI's --mmei-paper turns it on).")
    text_model: str = Field(default="minilm", description="Text encoder whose layers it runs: 'minilm' (the offline "
                            "all-MiniLM-L6-v2) or 'hf:<BERT-family name or folder>'.")
    layers: int = Field(default=2, ge=1, description="Top text-encoder layers fine-tuned, each followed by a gated "
                        "cross-attention block (at most the encoder's layers).")
    heads: int = Field(default=4, ge=1, description="Heads of the cross-attention blocks (must divide the text "
                       "encoder's hidden size).")
    epochs: int = Field(default=6, ge=1, description="Training epochs (early stopping on dev NLL).")
    batch_size: int = Field(default=32, ge=1, description="Sessions per training step.")
    lr: float = Field(default=1e-4, gt=0, description="Peak AdamW learning rate of the fine-tuned text layers "
                      "(one-cycle schedule, as mmei's).")
    new_lr: float = Field(default=1e-3, gt=0, description="Peak AdamW learning rate of what is new: the "
                          "cross-attention blocks and their gates, the voice and face projections, the heads.")
    patience: int = Field(default=2, ge=1, description="Epochs without a better dev NLL before stopping.")


class MMEIConfig(StrictModel):
    """The fusion model and its training."""

    width: int = Field(default=64, ge=8, description="Shared width d every modality is projected to.")
    heads: int = Field(default=4, ge=1)
    layers: int = Field(default=1, ge=1, description="Cross-modal transformer layers.")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    intent_weight: float = Field(default=1.0, ge=0.0, description="lambda in CE_e + lambda * CE_i.")
    modality_dropout: float = Field(
        default=0.3, ge=0.0, lt=1.0, description="Chance of dropping each present modality in training (one kept)."
    )
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    patience: int = Field(default=6, ge=1, description="Early stopping on dev NLL (MMEI: per expert, then joint).")
    class_weighted: bool = True
    threads: int = Field(default=1, ge=1, description="torch threads while training.")
    paper: MMEIPaperConfig = Field(default_factory=MMEIPaperConfig, description="The BERT-based variant "
                                   "mmei_paper (its own architecture, beside mmei).")


class AffectConfig(StrictModel):
    """Settings of the affect stage."""

    encoders: EncoderConfig = Field(default_factory=EncoderConfig)
    mmei: MMEIConfig = Field(default_factory=MMEIConfig)
    intents: Optional[list[str]] = Field(
        default=None, description="Intent labels; None = the world's AIGC intents (aigcrec.world.INTENTS)."
    )
    ece_bins: int = Field(default=15, ge=2)
