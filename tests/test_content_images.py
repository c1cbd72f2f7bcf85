"""Bad image inputs are reported with a reason (errors skipped, convertible ones converted), never a crash."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aigcrec.content.images import ImageProblem, load_rgb, to_array


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


RGB = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))


@pytest.mark.parametrize("data, reason", [
    (b"", "empty_file"),
    (b"this is not an image at all", "unreadable"),
    (_bytes(RGB, "JPEG")[:-400], "truncated"),
    (_bytes(RGB, "PPM"), "unsupported_format"),
])
def test_bad_bytes_raise_problem_with_reason(data, reason):
    with pytest.raises(ImageProblem) as err:
        load_rgb(data)
    assert err.value.reason == reason
    assert err.value.severity == "error"


def test_missing_file(tmp_path):
    with pytest.raises(ImageProblem) as err:
        load_rgb(tmp_path / "nope.png")
    assert err.value.reason == "missing_file"


def test_decompression_bomb_guard():
    with pytest.raises(ImageProblem) as err:
        load_rgb(_bytes(RGB, "PNG"), max_pixels=100)
    assert err.value.reason == "too_large"
    assert "50x40" in err.value.detail


@pytest.mark.parametrize("img, fmt, note", [
    (RGB.convert("CMYK"), "JPEG", "CMYK"),
    (RGB.convert("RGBA"), "PNG", "alpha"),
    (Image.fromarray((np.arange(40 * 50).reshape(40, 50) * 30).astype(np.uint16)), "PNG", "8-bit"),
])
def test_convertible_images_are_converted_with_a_note(img, fmt, note):
    rgb, notes = load_rgb(_bytes(img, fmt))
    assert rgb.mode == "RGB" and rgb.size == (50, 40)
    assert any(note in n for n in notes), notes


def test_alpha_is_composited_on_white():
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgb, _ = load_rgb(_bytes(clear, "PNG"))
    assert np.asarray(rgb).min() == 255


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    rgb, notes = load_rgb(buf.getvalue())
    assert any("animated (2 frames)" in n for n in notes)
    r, g, b = np.asarray(rgb)[8, 8]
    assert r > 200 and b < 50


def test_arrays_are_validated():
    with pytest.raises(ImageProblem, match="uint8"):
        load_rgb(np.zeros((4, 4, 3), np.float32))
    rgb, notes = load_rgb(np.zeros((4, 6, 3), np.uint8))
    assert rgb.size == (6, 4) and notes == []


def test_to_array_shape_and_range():
    arr = to_array(RGB, 32)
    assert arr.shape == (3, 32, 32) and arr.dtype == np.float32
    assert 0.0 <= arr.min() and arr.max() <= 1.0
