"""Reading images safely: every failure becomes a :class:`ImageProblem` with a reason, never a crash.

Decisions (see docs/content.md):

- unreadable, missing, truncated or corrupt files, unsupported formats and images over ``max_pixels``
  (decompression bombs) are errors: the item is skipped;
- CMYK, alpha, palette, 16-bit and animated images are converted (first frame, alpha composited on
  white, 16-bit scaled to 8-bit) and reported as warnings: the item is encoded.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps

ImageInput = Union[str, "os.PathLike[str]", bytes, Image.Image, np.ndarray]

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


@dataclass(frozen=True)
class ImageProblem(Exception):
    """Why an image could not be used as is. ``severity`` is 'error' (skipped) or 'warning' (converted)."""

    reason: str
    detail: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def _open(source: ImageInput, max_pixels: int) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or (source.ndim == 3 and source.shape[2] not in (1, 3, 4)):
            raise ImageProblem("bad_array", f"expected an HxW, HxWx3 or HxWx4 array, got shape {source.shape}")
        if source.dtype != np.uint8:
            raise ImageProblem("bad_array", f"expected a uint8 array, got {source.dtype}")
        return Image.fromarray(source.squeeze(-1) if source.ndim == 3 and source.shape[2] == 1 else source)
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageProblem("empty_file", "0 bytes")
        fp: object = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageProblem("missing_file", f"{path} does not exist")
        if path.stat().st_size == 0:
            raise ImageProblem("empty_file", f"{path} has 0 bytes")
        fp = path
    # PIL's own bomb check warns at max_pixels and raises at 2x; we want one explicit limit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)  # type: ignore[arg-type]
        except Image.DecompressionBombError as exc:
            raise ImageProblem("too_large", str(exc)) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageProblem("unreadable", f"not a readable image ({exc})") from None
    if img.format not in SUPPORTED_FORMATS:
        raise ImageProblem("unsupported_format", f"format {img.format}, supported: {', '.join(SUPPORTED_FORMATS)}")
    if img.width * img.height > max_pixels:
        raise ImageProblem("too_large", f"{img.width}x{img.height} pixels is over the limit of {max_pixels}")
    return img


def _to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        notes.append(f"{img.mode} (high bit depth): scaled to 8-bit")
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "CMYK":
        notes.append("CMYK: converted to RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        notes.append(f"{img.mode} with alpha: composited on white")
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("RGB")


def load_rgb(source: ImageInput, max_pixels: int = 64_000_000) -> tuple[Image.Image, list[str]]:
    """Decode ``source`` (path, bytes, PIL image or uint8 array) to RGB; return it and conversion notes.

    Raises :class:`ImageProblem` (severity 'error') when the image cannot be used.
    """
    img = _open(source, max_pixels)
    notes: list[str] = []
    prev = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, not a grey half-image
    try:
        frames = getattr(img, "n_frames", 1)
        if frames > 1:
            notes.append(f"animated ({frames} frames): first frame used")
            img.seek(0)
        img.load()
        if isinstance(source, (str, os.PathLike, bytes)):
            img = ImageOps.exif_transpose(img)
        rgb = _to_rgb(img, notes)
    except ImageProblem:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageProblem(reason, f"cannot decode pixels ({exc})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = prev
    return rgb, notes


def to_array(img: Image.Image, size: int) -> np.ndarray:
    """Resize (squash) an RGB image to ``size``x``size`` and return float32 CHW in [0, 1]."""
    arr = np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32)  # (S, S, 3)
    return arr.transpose(2, 0, 1) / 255.0  # (3, S, S)
