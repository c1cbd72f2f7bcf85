"""The ``hf:`` encoder paths, each with a tiny randomly initialised model saved to a local folder (offline)."""

from __future__ import annotations


import numpy as np
import pytest


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import AutoTokenizer, BertConfig, BertModel

    from aigcrec.affect.encoders.text import minilm_path

    d = tmp_path_factory.mktemp("bert")
    tok = AutoTokenizer.from_pretrained(minilm_path())
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_hf_text_encoder(tiny_bert):
    from aigcrec.affect.encoders.text import TextEncoder

    enc = TextEncoder(f"hf:{tiny_bert}", max_tokens=8).encode(["a rather long sentence with many words in it", "",
                                                                "hi"])
    assert enc.seq.shape == (3, 8, 32) and enc.pooled.shape == (3, 32)
    assert enc.present.tolist() == [True, False, True] and enc.mask[0].sum() == 8


def test_hf_face_encoder(tmp_path):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    from aigcrec.affect.encoders.face import FaceEncoder

    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=48)).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    enc = FaceEncoder(f"hf:{tmp_path}", detect="none").encode([np.zeros((50, 40, 3), np.uint8), None])
    assert enc.seq.shape == (2, 16, 24) and enc.pooled.shape == (2, 24)
    assert enc.present.tolist() == [True, False]


def test_hf_voice_encoder(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from aigcrec.affect.encoders.voice import VoiceEncoder

    Wav2Vec2Model(Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                 conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8),
                                 num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    long_clip, short_clip = rng.normal(0, 0.1, 16000).astype(np.float32), rng.normal(0, 0.1, 8000).astype(np.float32)
    enc = VoiceEncoder(f"hf:{tmp_path}").encode([(long_clip, 16000), (short_clip, 16000), None])
    assert enc.present.tolist() == [True, True, False]
    assert enc.seq.shape[2] == 16 and enc.mask[0].sum() > enc.mask[1].sum() > 0
    assert enc.mask[0].sum() == ((16000 - 10) // 5 + 1 - 8) // 4 + 1  # conv kernels 10, 8; strides 5, 4


def test_unknown_encoder_names_are_explained():
    from aigcrec.affect.encoders.face import FaceEncoder
    from aigcrec.affect.encoders.voice import VoiceEncoder

    with pytest.raises(ValueError, match="expected voice encoder"):
        VoiceEncoder("opensmile")
    with pytest.raises(ValueError, match="expected face encoder"):
        FaceEncoder("vgg")
