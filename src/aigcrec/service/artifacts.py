"""The typed artifacts manifest: ``M/artifacts.json``, what ``aigcrec serve --models M`` loads.

Written by ``aigcrec build --catalog DIR --out M`` and by ``aigcrec demo`` (``runs/<stamp>/artifacts.json``);
read by :meth:`aigcrec.service.assemble.ServicePaths.from_manifest`. Paths are relative to the manifest's
folder where they can be (so a models folder can be moved with its catalog), absolute otherwise.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MANIFEST_NAME = "artifacts.json"
Figure = Union[float, int, str, bool, None]


class StepRecord(BaseModel):
    """One step of a build (encode, train ranker, export, ...): how long it took and what it measured."""

    model_config = ConfigDict(extra="forbid")

    name: str
    seconds: float
    figures: dict[str, Figure] = Field(default_factory=dict)

    def summary(self) -> str:
        """``name (12.3 s): key value, key value`` — the one line ``aigcrec build`` prints per step."""
        figs = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.figures.items())
        return f"{self.name} ({self.seconds:.1f} s): {figs}" if figs else f"{self.name} ({self.seconds:.1f} s)"


class ArtifactsManifest(BaseModel):
    """Where the catalog and each model are, with versions and what each step measured."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    catalog_dir: str = Field(description="The catalog folder (items.csv + images + interactions).")
    layout: str = Field(description="Its layout (aigcrec.data.layouts): world, movielens, catalog, ...")
    feature_store: str = "features"
    ranker_dir: str = "ranker"
    content_dir: Optional[str] = Field(None, description="The content encoder that made the feature store.")
    mmei_dir: Optional[str] = Field(None, description="The affect model (MMEI); none: serve without affect.")
    ranker_onnx: Optional[str] = Field(None, description="The exported ranker, checked against torch.")
    retrieval_dir: Optional[str] = Field(
        None, description="The two-tower retrieval model (aigcrec.retrieval); none: candidates from the history, "
                          "fresh and popular items and the request text.")
    versions: dict[str, str] = Field(default_factory=dict)
    steps: list[StepRecord] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, description="Stage outputs the service does not read.")

    @model_validator(mode="before")
    @classmethod
    def _untyped(cls, data: Any) -> Any:
        """The untyped dict earlier demo runs wrote (``world_dir``, absolute paths): still served."""
        if isinstance(data, dict) and "format" not in data and "world_dir" in data:
            known = {"feature_store", "ranker_dir", "content_dir", "mmei_dir"}
            return {"catalog_dir": data["world_dir"], "layout": "world", **{k: data[k] for k in known & set(data)},
                    "extra": {k: v for k, v in data.items() if k not in known | {"world_dir"}}}
        return data

    @staticmethod
    def relative(path: str | Path, base: str | Path) -> str:
        """``path`` relative to ``base`` when it can be written so (same drive), else absolute."""
        path, base = Path(path).resolve(), Path(base).resolve()
        try:
            return os.path.relpath(path, base)
        except ValueError:
            return str(path)

    def resolve(self, value: Optional[str], base: Path) -> Optional[Path]:
        """A path of the manifest as an absolute path (relative ones are from ``base``, its folder)."""
        return None if not value else (Path(base) / value).resolve()

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ArtifactsManifest":
        """Read ``path`` (a manifest file, or a folder holding one); ``FileNotFoundError`` saying what is wrong."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FileNotFoundError(f"{path}: cannot read the artifacts manifest ({exc.strerror or exc})") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(file)"
            raise FileNotFoundError(
                f"{path}: not an artifacts manifest ({where}: {first['msg']}); rebuild it with "
                "`aigcrec build --catalog DIR --out M` or `make demo`"
            ) from None
