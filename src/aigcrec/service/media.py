"""Untrusted bytes at the boundary: base64 size checked before decoding, content sniffed, limits enforced.

Every check reads only what it needs (base64 length, magic bytes, image header, WAV header) before any
pixel or sample is decoded, so the cost of what follows is bounded by the limits; a failure raises
``Problem`` (413 over a limit, 415 wrong content, 422 bad data).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import struct

import soundfile
from PIL import Image, ImageFile, ImageOps
from PIL import Image
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


def header_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) read straight from a PNG, GIF or BMP header, or None for other types.

    PIL refuses to open images over twice its own pixel limit, which would turn an over-limit image into
    "unreadable"; these three formats keep their size at a fixed offset, so it is read here first.
    """
    if mime == "image/png" and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if mime == "image/gif" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if mime == "image/bmp" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)  # a negative height is a top-down bitmap
    return None


def check_image(data: bytes, limits: InputLimits, field: str, max_pixels: int | None = None) -> tuple[str, int, int]:
    """Sniff the type and read the header's size; refuse what is not an image or is over the pixel limit
    (``max_pixels``, default ``limits.max_image_pixels``). Returns (mime, width, height)."""
    max_pixels = limits.max_image_pixels if max_pixels is None else max_pixels
    mime = sniff_image(data)
    if mime is None:
        raise Problem(
            415,
            "unsupported-media",
            "Unsupported media type",
            f"{field}: expected PNG, JPEG, GIF, BMP or WebP bytes, got {data[:8]!r}...",
        )
    size = header_size(data, mime)
    if size is None:
        try:
            with Image.open(io.BytesIO(data)) as img:  # lazy: parses the header, decodes no pixels
                size = img.size
        except Image.DecompressionBombError:
            size = None  # over PIL's own limit, which is above ours: over the limit
        except Exception:
            raise Problem(
                422, "bad-image", "Unreadable image", f"{field}: the {mime} header cannot be parsed"
            ) from None
    if size is None or size[0] * size[1] > max_pixels:
        got = "more than PIL's limit" if size is None else f"{size[0]}x{size[1]}"
        raise Problem(
            413, "too-large", "Image too large", f"{field}: expected at most {max_pixels} pixels, got {got}"
        )
    if size[0] == 0 or size[1] == 0:
        raise Problem(422, "bad-image", "Empty image", f"{field}: the {mime} header says {size[0]}x{size[1]}")
    return mime, int(size[0]), int(size[1])


# Bytes a pixel takes in Pillow's storage: multi-band 8-bit modes (RGB too) are kept as 32-bit pixels.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """Memory of one decoded frame: ``width * height * b``, with ``b`` the bytes a pixel takes in Pillow's
    storage for ``mode`` (1 for 1/L/P, 2 for 16-bit grey, else 4: RGB is stored as 32-bit pixels)."""
    return width * height * _PIXEL_BYTES.get(mode, 4)


def decode_bounded(data: bytes, limits: InputLimits, field: str, side: int, max_pixels: int):
    """Decode the first frame of an image (any format Pillow opens) within ``limits.max_decoded_bytes``
    and downscale it to at most ``side`` pixels a side; returns the PIL image, or None when the image is
    already at most ``side`` a side (its bytes are then used as they are).

    The budget is checked from the header before any pixel is decoded, after ``Image.draft`` (JPEG decodes
    at 1/2, 1/4 or 1/8 scale, so a large JPEG costs the reduced size): peak memory is the decoded frame
    (at most the budget) plus the first ``reduce`` step (at most a quarter of it) and the ``side`` image.
    """
    _, width, height = check_image(data, limits, field, max_pixels)

    prev = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(data)) as img:
            if max(width, height) > side:
                img.draft(img.mode, (side, side))  # JPEG: decode at a reduced scale (no-op elsewhere)
            cost = decoded_bytes(img.mode, *img.size)
            if cost > limits.max_decoded_bytes:
                raise Problem(
                    413,
                    "too-large",
                    "Image too large",
                    f"{field}: {img.size[0]}x{img.size[1]} {img.mode} decodes to {cost} bytes, expected at "
                    f"most {limits.max_decoded_bytes} (limits.max_decoded_bytes)",
                )
            if max(width, height) <= side:
                return None
            img.load()
            img.thumbnail((side, side), Image.BILINEAR, reducing_gap=2.0)  # palettes: nearest neighbour
            return ImageOps.exif_transpose(img)
    except Problem:
        raise
    except Exception:
        raise Problem(422, "bad-image", "Unreadable image", f"{field}: the image cannot be decoded") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = prev


def prepare_item(data: bytes, limits: InputLimits, field: str) -> bytes:
    """An item image within ``max_image_pixels`` and ``max_decoded_bytes`` (from the header), downscaled
    in memory to at most ``item_side`` a side (lossless PNG, or TIFF for modes PNG cannot hold) so that the
    encoder decodes a bounded image whatever was uploaded. Images at most ``item_side`` a side pass
    unchanged (the encoder's own input is at most 1024 pixels a side)."""
    img = decode_bounded(data, limits, field, limits.item_side, limits.max_image_pixels)
    if img is None:
        return data
    buf = io.BytesIO()
    if img.mode in _PNG_MODES:
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="TIFF")
    return buf.getvalue()


def prepare_face(data: bytes, limits: InputLimits, field: str) -> bytes:
    """A face snapshot within ``max_face_pixels`` (and ``max_image_pixels``) and ``max_decoded_bytes``,
    from the header, downscaled in memory to at most ``face_side`` a side so that detection costs about the
    same for every accepted upload. Small faces pass unchanged."""
    img = decode_bounded(
        data, limits, field, limits.face_side, min(limits.max_face_pixels, limits.max_image_pixels)
    )
    if img is None:
        return data
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


_AUDIO_SUBTYPES = frozenset({"PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"})


def check_wav(data: bytes, limits: InputLimits, field: str) -> float:
    """Sniff a RIFF/WAVE header and check what decoding would cost from it alone: sample rate within
    ``min_audio_rate``..``max_audio_rate``, at most ``max_audio_channels``, a plain PCM or float sample
    format, and a duration within ``max_audio_seconds``. Returns the duration in seconds."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
        raise Problem(
            415,
            "unsupported-media",
            "Unsupported media type",
            f"{field}: expected a WAV file (RIFF/WAVE), got {data[:12]!r}",
        )

    try:
        info = soundfile.info(io.BytesIO(data))  # reads the header only
    except Exception:
        raise Problem(
            422, "bad-audio", "Unreadable audio", f"{field}: the WAV header cannot be parsed"
        ) from None
    if not limits.min_audio_rate <= info.samplerate <= limits.max_audio_rate:
        raise Problem(
            422,
            "bad-audio",
            "Unsupported sample rate",
            f"{field}: expected a sample rate of {limits.min_audio_rate}-{limits.max_audio_rate} Hz, "
            f"got {info.samplerate} Hz",
        )
    if not 1 <= info.channels <= limits.max_audio_channels:
        raise Problem(
            422,
            "bad-audio",
            "Unsupported channels",
            f"{field}: expected 1-{limits.max_audio_channels} channels, got {info.channels}",
        )
    if info.subtype not in _AUDIO_SUBTYPES:
        raise Problem(
            422,
            "bad-audio",
            "Unsupported sample format",
            f"{field}: expected PCM (8/16/24/32-bit) or float samples, got {info.subtype}",
        )
    seconds = info.frames / float(info.samplerate)
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
