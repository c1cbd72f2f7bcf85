"""Modality encoders behind one interface (:class:`ModalityEncoder`): raw input to a sequence plus a mask."""

from aigcrec.affect.encoders.base import MODALITIES, Encoded, ModalityEncoder, build_encoder

__all__ = ["MODALITIES", "Encoded", "ModalityEncoder", "build_encoder"]
