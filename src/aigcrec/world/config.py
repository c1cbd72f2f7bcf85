"""Configuration of the world stage (a section of ``AppConfig``)."""

from __future__ import annotations

from aigcrec.config_base import StrictModel


class WorldConfig(StrictModel):
    """Settings of the world stage."""
