"""Raw inputs to arrays, entirely in memory: nothing here writes a face image or an audio clip to disk.

Accepted forms
- voice: WAV (or any soundfile format) bytes, a file path, or ``(samples, sample_rate)``;
  samples (T,) mono or (T, channels) / (channels, T) with channels <= 8.
- face: encoded image bytes (PNG, JPEG, ...), a file path, a PIL image, or an ``np.ndarray``
  (H, W) grey or (H, W, 3) RGB, uint8 or float in [0, 1].
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from PIL import Image

VoiceInput = Union[bytes, str, Path, tuple]
FaceInput = Any  # bytes | str | Path | PIL.Image.Image | np.ndarray


class InputError(ValueError):
    """A raw input could not be read; the message says what was expected and what was received."""


def decode_voice(voice: VoiceInput, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Return mono float32 samples at ``sample_rate`` (Hz), cut to ``max_seconds``.

    Channels are averaged; other rates are resampled with a polyphase filter of bounded length
    (``resample_factors``).
    """
    if isinstance(voice, tuple):
        if len(voice) != 2:
            raise InputError(f"expected voice as (samples, sample_rate), got a tuple of length {len(voice)}")
        x, sr = np.asarray(voice[0]), int(voice[1])
    elif isinstance(voice, (bytes, bytearray, memoryview)):
        try:
            x, sr = sf.read(io.BytesIO(bytes(voice)), dtype="float32", always_2d=False)
        except Exception as exc:  # soundfile raises several types for bad bytes
            raise InputError(f"expected audio bytes soundfile can read (WAV, FLAC, OGG), got {len(voice)} "
                             f"bytes it cannot: {exc}") from None
    elif isinstance(voice, (str, Path)):
        if not Path(voice).is_file():
            raise InputError(f"expected an audio file, got a path that does not exist: {voice}")
        try:
            x, sr = sf.read(str(voice), dtype="float32", always_2d=False)
        except Exception as exc:
            raise InputError(f"expected an audio file soundfile can read, got {voice}: {exc}") from None
    else:
        raise InputError(f"expected voice as WAV bytes, a path or (samples, sample_rate), got {type(voice).__name__}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        # (T, C) as soundfile returns it, or (C, T) as torchaudio-style arrays come
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if x.ndim != 1:
        raise InputError(f"expected samples of shape (T,) or (T, channels), got {x.shape}")
    x = x[: int(max_seconds * sr)]
    if sr != sample_rate:
        up, down = resample_factors(sr, sample_rate)
        x = resample_poly(x, up, down).astype(np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


MAX_RESAMPLE_FACTOR = 1000
"""Largest up / down factor of the polyphase resampler: its filter has ~20 x max(up, down) taps."""
SAMPLE_RATES = (1_000, 768_000)
"""Sample rates (Hz) ``decode_voice`` accepts."""


def resample_factors(sr: int, target: int) -> tuple[int, int]:
    """(up, down), both <= ``MAX_RESAMPLE_FACTOR``, with ``up / down`` the closest such ratio to ``target / sr``.

    The exact ratio of a prime rate (999,983 Hz) has a factor near the rate itself, and the polyphase
    filter ~20 x that many taps (1 GB); the best ratio with both factors <= N is off by at most 1/N
    relative (0.1 %, a pitch shift under 2 cents) and bounds the filter, so resampling costs O(samples).
    """
    if not SAMPLE_RATES[0] <= sr <= SAMPLE_RATES[1]:
        raise InputError(f"expected a sample rate of {SAMPLE_RATES[0]}-{SAMPLE_RATES[1]} Hz, got {sr} Hz")
    ratio = Fraction(target, sr)
    if ratio <= 1:
        ratio = ratio.limit_denominator(MAX_RESAMPLE_FACTOR)
    else:
        ratio = 1 / (1 / ratio).limit_denominator(MAX_RESAMPLE_FACTOR)
    return ratio.numerator, ratio.denominator


def level_dbfs(x: np.ndarray) -> float:
    """RMS level in dB full scale: 20 log10(sqrt(mean(x^2))); -inf for an empty clip."""
    if x.size == 0:
        return float("-inf")
    return float(20.0 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-12)))


def decode_face(face: FaceInput) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB array."""
    if isinstance(face, (bytes, bytearray, memoryview)):
        try:
            img = Image.open(io.BytesIO(bytes(face)))
            img.load()
        except Exception as exc:
            raise InputError(f"expected encoded image bytes (PNG, JPEG, ...), got {len(face)} bytes PIL cannot "
                             f"read: {exc}") from None
        return np.asarray(img.convert("RGB"))
    if isinstance(face, (str, Path)):
        if not Path(face).is_file():
            raise InputError(f"expected an image file, got a path that does not exist: {face}")
        try:
            with Image.open(face) as img:
                return np.asarray(img.convert("RGB"))
        except Exception as exc:
            raise InputError(f"expected an image file PIL can read, got {face}: {exc}") from None
    if isinstance(face, Image.Image):
        return np.asarray(face.convert("RGB"))
    if isinstance(face, np.ndarray):
        a = face
        if a.dtype != np.uint8:
            a = np.clip(a.astype(np.float32) * (255.0 if a.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise InputError(f"expected an image array (H, W) or (H, W, 3), got shape {face.shape}")
        return np.ascontiguousarray(a[:, :, :3])
    raise InputError(f"expected a face as image bytes, a path, a PIL image or an array, got {type(face).__name__}")
