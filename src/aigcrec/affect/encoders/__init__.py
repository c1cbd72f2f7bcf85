"""Modality encoders behind one interface (:class:`ModalityEncoder`): raw input to a sequence plus a mask.

``factory.build_encoder`` builds one by name; it is not re-exported here, so reading ``base`` (``Encoded``,
``MODALITIES``) does not load torch and the encoders' models.
"""

from aigcrec.affect.encoders.base import MODALITIES, Encoded, ModalityEncoder

__all__ = ["MODALITIES", "Encoded", "ModalityEncoder"]
