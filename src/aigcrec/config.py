"""Configuration: YAML files validated by pydantic.

Every section is a strict model (unknown keys are errors). ``load_config`` turns a YAML file into an
``AppConfig`` and reports a mistyped key with the file it came from and the closest valid name.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from aigcrec.config_base import ConfigError, StrictModel

# Section models live next to the code they configure; imported here so one file describes a run.
from aigcrec.affect.config import AffectConfig
from aigcrec.content.config import ContentConfig
from aigcrec.distributed.config import DistributedConfig
from aigcrec.ranking.config import RankingConfig
from aigcrec.retrieval.config import RetrievalStageConfig
from aigcrec.service.config import ServiceConfig
from aigcrec.simulate.config import SimulateConfig
from aigcrec.world.config import WorldConfig

__all__ = ["AppConfig", "ConfigError", "StrictModel", "load_config", "validate_config"]


class AppConfig(StrictModel):
    """One run of aigcrec: a seed, an output folder and one section per stage."""

    seed: int = 0
    out: Path = Path("runs")
    world: WorldConfig = Field(default_factory=WorldConfig)
    content: ContentConfig = Field(default_factory=ContentConfig)
    affect: AffectConfig = Field(default_factory=AffectConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    retrieval: RetrievalStageConfig = Field(default_factory=RetrievalStageConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)


def _describe(err: dict[str, Any], model: type[BaseModel], source: str) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        parent: Any = model
        for part in err["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        valid = list(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else []
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else (f" (valid keys: {', '.join(valid)})" if valid else "")
        return f"{source}: unknown key '{loc}'{hint}"
    return f"{source}: key '{loc}': {err['msg']} (got {err.get('input')!r})"


def validate_config(data: dict[str, Any], model: type[BaseModel] = AppConfig, source: str = "<config>") -> Any:
    """Validate a mapping against ``model``; errors name the key and ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(e, model, source) for e in exc.errors())) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (YAML itself keeps the last one
    silently, so a second ``ranking:`` section would quietly replace the first)."""

    def construct_mapping(self, node, deep=False):
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                seen = key in first
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping (first on line {first[key] + 1})",
                    key_node.start_mark)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None, model: type[BaseModel] = AppConfig, **overrides: Any) -> Any:
    """Load ``path`` (YAML) into ``model``; ``overrides`` (e.g. ``seed=3``) win over the file.

    ``None`` values in ``overrides`` are ignored so CLI options left unset keep the file's value.
    """
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            loaded = yaml.load(p.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level, got {type(loaded).__name__}")
        data = loaded
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return validate_config(data, model, source)
