"""Untrusted bytes at the boundary: base64 size checked before decoding, content sniffed, limits enforced.

Every check reads only what it needs (base64 length, magic bytes, image header, WAV header) before any
pixel or sample is decoded; a failure raises ``Problem`` (413 over a limit, 415 wrong content, 422 bad data).
"""

from __future__ import annotations

import base64
import binascii
import io
import re

from aigcrec.service.config import InputLimits
from aigcrec.service.problems import Problem

_DATA_URL = re.compile(r"^data:[\w/+.-]+;base64,")
_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def decode_base64(value: str, max_bytes: int, field: str) -> bytes:
    """Decode standard base64 (a ``data:...;base64,`` prefix is accepted) after checking the decoded size."""
    value = _DATA_URL.sub("", value.strip(), count=1)
    size = len(value) * 3 // 4 - value[-2:].count("=")
    if size > max_bytes:
        raise Problem(
            413,
            "too-large",
            "Payload too large",
            f"{field}: expected at most {max_bytes} bytes, got about {size} bytes",
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(
            422,
            "bad-encoding",
            "Invalid base64",
            f"{field}: expected standard base64, got {len(value)} characters that do not decode",
        ) from None


def sniff_image(data: bytes) -> str | None:
    """MIME type from the magic bytes (PNG, JPEG, GIF, BMP, WebP), or None."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_image(data: bytes, limits: InputLimits, field: str) -> str:
    """Sniff the type and read the header's size; refuse what is not an image or is over the pixel limit."""
    mime = sniff_image(data)
    if mime is None:
        raise Problem(
            415,
            "unsupported-media",
            "Unsupported media type",
            f"{field}: expected PNG, JPEG, GIF, BMP or WebP bytes, got {data[:8]!r}...",
        )
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:  # lazy: parses the header, decodes no pixels
            width, height = img.size
    except Exception:
        raise Problem(
            422, "bad-image", "Unreadable image", f"{field}: the {mime} header cannot be parsed"
        ) from None
    if width * height > limits.max_image_pixels:
        raise Problem(
            413,
            "too-large",
            "Image too large",
            f"{field}: expected at most {limits.max_image_pixels} pixels, got {width}x{height}",
        )
    return mime


def check_wav(data: bytes, limits: InputLimits, field: str) -> float:
    """Sniff a RIFF/WAVE header and its duration; refuse other audio or clips over the length limit."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise Problem(
            415,
            "unsupported-media",
            "Unsupported media type",
            f"{field}: expected a WAV file (RIFF/WAVE), got {data[:12]!r}",
        )
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:
        raise Problem(
            422, "bad-audio", "Unreadable audio", f"{field}: the WAV header cannot be parsed"
        ) from None
    seconds = info.frames / float(info.samplerate or 1)
    if seconds > limits.max_audio_seconds:
        raise Problem(
            413,
            "too-large",
            "Audio too long",
            f"{field}: expected at most {limits.max_audio_seconds:g} s, got {seconds:.1f} s",
        )
    if info.frames == 0:
        raise Problem(422, "bad-audio", "Empty audio", f"{field}: the WAV file holds no samples")
    return seconds


def check_text(text: str, limits: InputLimits, field: str) -> str:
    if len(text) > limits.max_text_chars:
        raise Problem(
            413,
            "too-large",
            "Text too long",
            f"{field}: expected at most {limits.max_text_chars} characters, got {len(text)}",
        )
    return text
