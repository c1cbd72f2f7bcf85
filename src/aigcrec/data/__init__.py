"""Schemas, strict loaders and validation of every dataset format aigcrec reads.

Loaders (each takes a folder, validates it and raises :class:`DataError` naming file, row and field):
:func:`load_movielens`, :func:`load_fer2013`, :func:`load_meld`, :func:`load_clinc150`,
:func:`load_context` (context-aware rating sets), and
:func:`load_catalog` for content catalogs (MovieLens with posters, or an aigcrec world).
Names are imported lazily so ``import aigcrec.data`` (done by the CLI) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataError": "aigcrec.data.errors",
    "DatasetReport": "aigcrec.data.report",
    "EMOTIONS": "aigcrec.data.schemas",
    "Item": "aigcrec.data.schemas",
    "User": "aigcrec.data.schemas",
    "Interaction": "aigcrec.data.schemas",
    "AffectSample": "aigcrec.data.schemas",
    "Tag": "aigcrec.data.schemas",
    "MovieLens": "aigcrec.data.movielens",
    "load_movielens": "aigcrec.data.movielens",
    "FER2013": "aigcrec.data.fer2013",
    "load_fer2013": "aigcrec.data.fer2013",
    "MELD": "aigcrec.data.meld",
    "load_meld": "aigcrec.data.meld",
    "CLINC150": "aigcrec.data.clinc150",
    "load_clinc150": "aigcrec.data.clinc150",
    "ContextRatings": "aigcrec.data.context",
    "ContextSchema": "aigcrec.data.context",
    "load_context": "aigcrec.data.context",
    "Catalog": "aigcrec.data.catalog",
    "load_catalog": "aigcrec.data.catalog",
    "read_catalog": "aigcrec.data.catalog",
    "Format": "aigcrec.data.validate",
    "load_report": "aigcrec.data.validate",
    "world_report": "aigcrec.data.world",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aigcrec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
