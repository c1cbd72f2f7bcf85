"""Voice: eGeMAPS v02 through ``afx-audio`` (offline) or Wav2Vec2/HuBERT/WavLM frames (``hf:``).

Every clip is decoded in memory, averaged to mono, resampled to ``sample_rate`` and cut to ``max_seconds``;
a clip quieter than ``silence_dbfs`` (RMS) or shorter than 0.25 s is a missing modality.

- ``egemaps``: seq = the 25 low-level descriptors (10 ms frames) pooled into ``segment_ms`` segments,
  [mean (25), std (25)] per segment, undefined (unvoiced) values as 0; pooled = the 88 eGeMAPS functionals.
- ``egemaps-lld``: the same seq; pooled = [mean, std] of the descriptors over the clip (50-d), one
  descriptor pass instead of two (about half the time).
- ``prosody``: the same layout over 32 NumPy descriptors (energy, ZCR, F0, voicing, centroid, roll-off,
  26 log-mel bands; :mod:`aigcrec.affect.encoders.prosody`): seq 64-d, pooled [mean, std] over the clip
  (64-d, F0 over voiced frames only). A few ms per clip instead of hundreds: the interactive path.
- ``hf:<name or folder>`` (e.g. ``hf:facebook/wav2vec2-base``): seq = last hidden states, pooled = their mean.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from aigcrec.affect.encoders.base import ModalityEncoder, hf_name
from aigcrec.affect.encoders.prosody import prosody_frames
from aigcrec.affect.inputs import decode_voice, level_dbfs

MIN_SECONDS = 0.25


def lld_segments(lld: np.ndarray, frames_per_segment: int) -> np.ndarray:
    """(25, T) descriptors (NaN where undefined) -> (ceil(T / k), 50) [mean, std] per segment of k frames."""
    t = lld.shape[1]
    n = max(1, -(-t // frames_per_segment))
    padded = np.full((lld.shape[0], n * frames_per_segment), np.nan)
    padded[:, :t] = lld
    seg = padded.reshape(lld.shape[0], n, frames_per_segment)  # (25, S, k)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(seg, axis=2)
            std = np.nanstd(seg, axis=2)
    return np.nan_to_num(np.concatenate([mean, std], axis=0).T, nan=0.0).astype(np.float32)  # (S, 50)


class VoiceEncoder(ModalityEncoder):
    """Audio clips to voice tokens."""

    modality = "voice"

    def __init__(self, name: str = "egemaps", sample_rate: int = 16000, max_seconds: float = 10.0,
                 silence_dbfs: float = -55.0, segment_ms: int = 100) -> None:
        self.name, self.sample_rate, self.max_seconds = name, sample_rate, max_seconds
        self.silence_dbfs, self.segment_ms = silence_dbfs, segment_ms
        hub = hf_name(name)
        if hub is not None:
            # lazy: a hub-model package (seconds to import), loaded only when a config names such a model
            from transformers import AutoFeatureExtractor, AutoModel

            self.processor = AutoFeatureExtractor.from_pretrained(hub)
            self.model = AutoModel.from_pretrained(hub).eval()
            self.seq_dim = self.pooled_dim = int(self.model.config.hidden_size)
        elif name in ("egemaps", "egemaps-lld"):
            self.processor = self.model = None
            self.seq_dim = 50
            self.pooled_dim = 88 if name == "egemaps" else 50
        elif name == "prosody":
            self.processor = self.model = None
            self.seq_dim = self.pooled_dim = 64
        else:
            raise ValueError(f"expected voice encoder 'egemaps', 'egemaps-lld', 'prosody' or 'hf:<name>', "
                             f"got {name!r}")

    def _prepare(self, item: Any) -> np.ndarray | None:
        x = decode_voice(item, self.sample_rate, self.max_seconds)
        if len(x) < MIN_SECONDS * self.sample_rate or level_dbfs(x) < self.silence_dbfs:
            return None
        return x

    def _encode_present(self, items: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        if self.model is not None:
            return self._encode_hf(items)
        k = max(1, self.segment_ms // 10)
        if self.name == "prosody":
            seqs, pooled = [], []
            for x in items:
                d = prosody_frames(x, self.sample_rate).T.astype(np.float64)  # (32, T)
                d[2][d[2] == 0] = np.nan  # F0 statistics over voiced frames only
                seqs.append(lld_segments(d, k))
                pooled.append(lld_segments(d, d.shape[1])[0])
            return seqs, np.stack(pooled)
        # lazy: the audio package loads only on the voice path
        from afx_audio.extractors.egemaps import extract_egemaps, extract_egemaps_lld

        seqs, pooled = [], []
        for x in items:
            lld = extract_egemaps_lld(x, self.sample_rate)["egemaps_lld"]  # (25, T)
            seqs.append(lld_segments(lld, k))
            if self.name == "egemaps":
                pooled.append(extract_egemaps(x, self.sample_rate)["egemaps"][:, 0])  # (88,)
            else:
                pooled.append(lld_segments(lld, lld.shape[1])[0])  # (50,)
        return seqs, np.nan_to_num(np.stack(pooled), nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    def _encode_hf(self, items: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        inputs = self.processor(items, sampling_rate=self.sample_rate, return_tensors="pt", padding=True,
                                return_attention_mask=True)
        with torch.inference_mode():
            h = self.model(inputs["input_values"]).last_hidden_state  # (B, T', H)
        frames = [int(self.model._get_feat_extract_output_lengths(torch.tensor(len(x))).item()) for x in items]
        seqs = [h[i, : frames[i]].float().numpy() for i in range(len(items))]
        return seqs, np.stack([s.mean(0) for s in seqs])
