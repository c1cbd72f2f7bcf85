"""What a loader found in a dataset folder: counts, label distributions and missing optional values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DatasetReport:
    """Summary of one loaded dataset, printed by ``aigcrec data validate`` and saved as JSON.

    - ``counts``: sizes, e.g. ``{"ratings": 100000, "users": 943}``.
    - ``distributions``: label name -> count per labelled field, e.g. ``{"train.emotion": {"joy": 1743}}``.
    - ``missing``: how many optional values are absent, e.g. ``{"users.age": 0, "items.poster": 15}``;
      missing optional values are normal in real data: they load and are counted here.
    - ``notes``: anything else worth knowing (duplicates kept, rows without metadata, ...).
    """

    format: str
    root: str
    counts: dict[str, int] = field(default_factory=dict)
    distributions: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
