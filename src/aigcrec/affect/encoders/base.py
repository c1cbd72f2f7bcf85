"""One interface for every modality encoder: raw inputs in, a padded sequence of vectors plus a mask out.

An input that is ``None``, cannot be read, shows no detectable face, or is a silent clip yields
``present = False`` for that row (a missing modality, never a guess); unreadable inputs are also listed
in ``problems`` as ``(row, message)``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from aigcrec.affect.inputs import InputError

log = logging.getLogger("aigcrec.affect")

MODALITIES: tuple[str, ...] = ("text", "voice", "face")


@dataclass
class Encoded:
    """A batch of one modality.

    seq: (B, L, D) float32, zero where padded; mask: (B, L) bool, True at real positions;
    pooled: (B, P) float32, one vector per input (zeros when missing); present: (B,) bool.
    """

    seq: np.ndarray
    mask: np.ndarray
    pooled: np.ndarray
    present: np.ndarray
    problems: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        b = len(self.present)
        if self.seq.ndim != 3 or self.mask.shape != self.seq.shape[:2] or self.pooled.shape[0] != b \
                or self.seq.shape[0] != b:
            raise ValueError(f"inconsistent Encoded shapes: seq {self.seq.shape}, mask {self.mask.shape}, "
                             f"pooled {self.pooled.shape}, present {self.present.shape}")

    def __len__(self) -> int:
        return len(self.present)

    def take(self, idx: np.ndarray) -> "Encoded":
        """Rows ``idx`` (problems are not carried over)."""
        return Encoded(self.seq[idx], self.mask[idx], self.pooled[idx], self.present[idx])

    @staticmethod
    def concat(parts: Sequence["Encoded"]) -> "Encoded":
        """Stack batches, padding sequences to the longest."""
        length = max(p.seq.shape[1] for p in parts)
        dim = parts[0].seq.shape[2]
        seqs, masks, problems, offset = [], [], [], 0
        for p in parts:
            pad = length - p.seq.shape[1]
            seqs.append(np.pad(p.seq, ((0, 0), (0, pad), (0, 0))) if pad else p.seq)
            masks.append(np.pad(p.mask, ((0, 0), (0, pad))) if pad else p.mask)
            problems += [(offset + i, m) for i, m in p.problems]
            offset += len(p)
        seq = np.concatenate(seqs) if seqs else np.zeros((0, length, dim), np.float32)
        return Encoded(seq, np.concatenate(masks), np.concatenate([p.pooled for p in parts]),
                       np.concatenate([p.present for p in parts]), problems)


class ModalityEncoder(ABC):
    """Raw inputs of one modality to :class:`Encoded`. Subclasses set ``modality``, ``seq_dim``, ``pooled_dim``."""

    modality: str
    seq_dim: int
    pooled_dim: int

    @abstractmethod
    def _encode_present(self, items: list[Any]) -> tuple[list[np.ndarray], np.ndarray]:
        """Encode readable inputs: per-row (L_i, D) sequences (L_i = 0 means missing) and (B, P) pooled."""

    def _prepare(self, item: Any) -> Any:
        """Decode one raw input (raise :class:`InputError` if unreadable; return None if missing)."""
        return item

    def encode(self, items: Sequence[Any], batch_size: int = 32) -> Encoded:
        """Encode ``items`` (``None`` = missing) in batches of ``batch_size``."""
        parts = []
        for start in range(0, len(items), batch_size):
            parts.append(self._encode_batch(list(items[start:start + batch_size]), start))
        if not parts:
            return self._empty(0)
        return Encoded.concat(parts)

    def _empty(self, n: int) -> Encoded:
        return Encoded(np.zeros((n, 1, self.seq_dim), np.float32), np.zeros((n, 1), bool),
                       np.zeros((n, self.pooled_dim), np.float32), np.zeros(n, bool))

    def _encode_batch(self, items: list[Any], offset: int) -> Encoded:
        prepared: list[Any] = []
        rows: list[int] = []
        problems: list[tuple[int, str]] = []
        for i, item in enumerate(items):
            if item is None:
                continue
            try:
                p = self._prepare(item)
            except InputError as exc:
                problems.append((offset + i, f"{self.modality}: {exc}"))
                log.warning("row %d %s input skipped: %s", offset + i, self.modality, exc)
                continue
            if p is not None:
                prepared.append(p)
                rows.append(i)
        out = self._empty(len(items))
        out.problems = problems
        if not prepared:
            return out
        seqs, pooled = self._encode_present(prepared)
        length = max(1, max(len(s) for s in seqs))
        out.seq = np.zeros((len(items), length, self.seq_dim), np.float32)
        out.mask = np.zeros((len(items), length), bool)
        for row, s, v in zip(rows, seqs, pooled):
            if len(s) == 0:
                continue
            out.seq[row, : len(s)] = s
            out.mask[row, : len(s)] = True
            out.pooled[row] = v
            out.present[row] = True
        return out


def hf_name(name: str) -> str | None:
    """``'hf:<model>'`` -> ``'<model>'``; other names -> None."""
    return name[3:] if name.startswith("hf:") else None
