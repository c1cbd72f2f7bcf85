"""Configuration of the ranking stage (a section of ``AppConfig``)."""

from __future__ import annotations

from aigcrec.config_base import StrictModel


class RankingConfig(StrictModel):
    """Settings of the ranking stage."""
