"""Saved model components: one folder each, ``config.json`` beside the weights (docs/architecture.md, "Saved
components").

``config.json`` is one JSON object: ``component`` (what the folder holds, a key of ``LEGACY_NAMES``),
``format`` (the version of that component's folder layout, 1, 2, ...) and the component's own fields
(settings, fitted metadata). As in a Hugging Face model folder, the file name is the same for every
component and the ``component`` field says which one it is, so a folder given to the wrong loader is refused
by name rather than failing on a missing key.

Folders saved before this convention named the file after the component (``LEGACY_NAMES``: ``ranker.json``,
``model.json``, ``content.json``, ``two_tower.json``; the image and text encoders already wrote
``config.json``, without the two fields). ``read_config`` reads them too; ``config.json`` wins when a folder
has both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from aigcrec.config_base import ConfigError

CONFIG_FILE = "config.json"

# component -> the config file name folders had before this convention (read, never written)
LEGACY_NAMES: dict[str, str] = {
    "ranker": "ranker.json",  # ranking.bundle.RankerBundle
    "affect_model": "model.json",  # affect.model.AffectModel (MMEI, unimodal)
    "content_encoder": "content.json",  # content.encoder.ContentEncoder (image/ and text/ inside)
    "image_encoder": "config.json",  # content.image_encoder.DualOutputImageEncoder
    "text_encoder": "config.json",  # content.text_encoder.MultiPerspectiveTextEncoder
    "two_tower": "two_tower.json",  # retrieval.retriever.TwoTowerRetriever
    "item_item": "config.json",  # retrieval.collab.ItemItemModel (EASE^R; born under this convention)
}


def _legacy(component: str) -> str:
    if component not in LEGACY_NAMES:
        raise ValueError(f"unknown saved component {component!r}; known: {sorted(LEGACY_NAMES)}")
    return LEGACY_NAMES[component]


def write_config(folder: str | Path, component: str, fmt: int, body: Mapping[str, Any], **dump: Any) -> Path:
    """Write ``folder/config.json`` = ``{"component", "format", **body}``; ``dump``: ``json.dumps`` options."""
    _legacy(component)
    clash = sorted({"component", "format"} & set(body))
    if clash:
        raise ValueError(f"{component} config: {clash} are the saved-config header, not fields of the body")
    path = Path(folder) / CONFIG_FILE
    path.write_text(json.dumps({"component": component, "format": int(fmt), **body}, **dump), encoding="utf-8")
    return path


def config_file(folder: str | Path, component: str) -> Path | None:
    """The config file of a saved ``component`` in ``folder`` (``config.json``, else its legacy name), or None."""
    folder = Path(folder)
    for name in dict.fromkeys((CONFIG_FILE, _legacy(component))):
        if (folder / name).is_file():
            return folder / name
    return None


def read_config(folder: str | Path, component: str, newest: int) -> tuple[dict[str, Any], int, Path]:
    """``(body, format, path)`` of the ``component`` saved in ``folder``; ``newest``: the latest format it reads.

    Raises ``FileNotFoundError`` when the folder has no config file, ``ConfigError`` (naming the file) when
    it is not a JSON object, holds another component, or has a format outside ``1..newest``. A legacy file
    without ``format`` is format 1 (the ranker's old files carry ``format_version``, which the body keeps).
    """
    folder = Path(folder)
    path = config_file(folder, component)
    legacy = _legacy(component)
    if path is None:
        names = " or ".join(dict.fromkeys((CONFIG_FILE, legacy)))
        raise FileNotFoundError(f"{folder}: not a saved {component} (no {names})")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(body).__name__}")
    saved = body.pop("component", None)
    if saved is None and path.name == CONFIG_FILE and legacy != CONFIG_FILE:
        raise ConfigError(f"{path}: no 'component' field, so not a saved {component} (expected "
                          f'"component": "{component}")')
    if saved is not None and saved != component:
        raise ConfigError(f"{path}: a saved {saved}, not a {component}")
    fmt = body.pop("format", 1)
    if not isinstance(fmt, int) or not 1 <= fmt <= newest:
        raise ConfigError(f"{path}: format {fmt!r} of a saved {component}; this version of aigcrec reads "
                          f"formats 1 to {newest} (saved by a newer aigcrec? retrain or upgrade)")
    return body, fmt, path
