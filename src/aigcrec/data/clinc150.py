"""CLINC150 intents: ``data_full.json`` (+ optional ``domains.json``).

``data_full.json`` is one JSON object whose keys ``train``, ``val``, ``test`` (required) and
``oos_train``, ``oos_val``, ``oos_test`` (optional) each hold a list of ``[text, intent]`` pairs; the
out-of-scope intent is ``"oos"``. ``domains.json`` maps a domain to its list of intents. The other
files of the oos-eval release (``data_small.json``, ``data_imbalanced.json``, ``data_oos_plus.json``)
load the same way with ``file=``. In error messages "row r, field 'train'" is pair ``r`` (1-based) of
the ``train`` list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aigcrec.data.checks import read_bytes, require_dir, value_counts
from aigcrec.data.errors import DataError
from aigcrec.data.report import DatasetReport

OOS = "oos"
SPLITS = ("train", "val", "test")
DOMAINS_FILE = "domains.json"


@dataclass
class CLINC150:
    """A loaded CLINC150 file.

    Every split is a frame with columns text, intent, label (int64 index into ``label_names``) and
    domain (str, or None without ``domains.json``). ``label_names`` is the sorted in-scope intents
    followed by ``"oos"``, so out-of-scope is the last class. ``oos_<split>`` frames are empty when
    the file has no such key.
    """

    root: Path
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    oos_train: pd.DataFrame
    oos_val: pd.DataFrame
    oos_test: pd.DataFrame
    intents: tuple[str, ...]
    domains: dict[str, str] | None
    report: DatasetReport

    @property
    def label_names(self) -> tuple[str, ...]:
        return (*self.intents, OOS)

    def split(self, name: str, with_oos: bool = False) -> pd.DataFrame:
        """The in-scope frame of ``name`` (train/val/test), with its out-of-scope rows appended if asked."""
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {list(SPLITS)}, got {name!r}")
        frame = getattr(self, name)
        return pd.concat([frame, getattr(self, f"oos_{name}")], ignore_index=True) if with_oos else frame


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_bytes(path))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise DataError(path, f"not valid JSON ({exc.msg} at {where})") from None


def _pairs(data: dict[str, Any], key: str, path: Path, oos: bool) -> pd.DataFrame:
    value = data[key]
    if not isinstance(value, list):
        raise DataError(path, "not a list", field=key, expected="a list of [text, intent] pairs",
                        got=type(value).__name__)
    for i, pair in enumerate(value, start=1):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise DataError(path, "malformed pair", row=i, field=key, expected="[text, intent] (two strings)",
                            got=pair)
        if not pair[0].strip():
            raise DataError(path, "empty text", row=i, field=key, expected="a non-empty utterance", got=pair)
        if (pair[1] == OOS) != oos:
            expected = f"intent '{OOS}'" if oos else f"an in-scope intent (not '{OOS}')"
            raise DataError(path, "wrong intent for this split", row=i, field=key, expected=expected,
                            got=pair[1])
        if not pair[1].strip():
            raise DataError(path, "empty intent", row=i, field=key, expected="an intent name", got=pair)
    return pd.DataFrame(value, columns=["text", "intent"], dtype=str)


def _read_domains(root: Path, intents: set[str]) -> dict[str, str] | None:
    path = root / DOMAINS_FILE
    if not path.exists():
        return None
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, "not an object", expected="{domain: [intent, ...]}", got=type(data).__name__)
    of: dict[str, str] = {}
    for domain, names in data.items():
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise DataError(path, "not a list of intent names", field=domain, expected="[intent, ...]",
                            got=names)
        for n in names:
            if n not in intents:
                raise DataError(path, "unknown intent", field=domain, expected="an intent of the train split",
                                got=n)
            if n in of:
                raise DataError(path, f"intent already in domain '{of[n]}'", field=domain,
                                expected="each intent in one domain", got=n)
            of[n] = domain
    return of


def load_clinc150(root: str | Path, file: str = "data_full.json") -> CLINC150:
    """Load and validate ``<root>/<file>`` and, when present, ``<root>/domains.json``."""
    root = require_dir(root)
    path = root / file
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, "not an object", expected="{split: [[text, intent], ...]}",
                        got=type(data).__name__)
    for key in SPLITS:
        if key not in data:
            raise DataError(path, "missing split", field=key, expected=f"keys {list(SPLITS)} (+ oos_*)",
                            got=sorted(data))
    frames = {key: _pairs(data, key, path, oos=False) for key in SPLITS}
    empty = pd.DataFrame({"text": pd.Series(dtype=str), "intent": pd.Series(dtype=str)})
    frames.update({f"oos_{key}": _pairs(data, f"oos_{key}", path, oos=True) if f"oos_{key}" in data else empty
                   for key in SPLITS})

    intents = tuple(sorted(set(frames["train"]["intent"])))
    for key in ("val", "test"):
        unknown = ~frames[key]["intent"].isin(intents)
        if unknown.any():
            i = int(unknown.to_numpy().argmax())
            raise DataError(path, "intent not seen in train", row=i + 1, field=key,
                            expected="an intent of the train split", got=frames[key]["intent"].iloc[i])
    domains = _read_domains(root, set(intents))
    index = {name: i for i, name in enumerate((*intents, OOS))}
    for frame in frames.values():
        frame["label"] = frame["intent"].map(index).astype("int64")
        frame["domain"] = pd.Series([(domains or {}).get(n) for n in frame["intent"]], dtype=object)

    report = DatasetReport(
        format="clinc150",
        root=str(root),
        counts={**{key: len(f) for key, f in frames.items()}, "intents": len(intents),
                "domains": len(set(domains.values())) if domains else 0},
        distributions={"train.examples_per_intent": value_counts(frames["train"]["intent"].value_counts())},
        missing={
            "oos_splits": sum(f"oos_{key}" not in data for key in SPLITS),
            "intents_without_domain": len(intents) - len(domains or {}),
        },
    )
    if domains:
        report.distributions["domain.intents"] = value_counts(domains.values())
    return CLINC150(root=root, intents=intents, domains=domains, report=report, **frames)
