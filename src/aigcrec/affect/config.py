"""Configuration of the affect stage (a section of ``AppConfig``)."""

from __future__ import annotations

from aigcrec.config_base import StrictModel


class AffectConfig(StrictModel):
    """Settings of the affect stage."""
