"""Configuration of the content stage (a section of ``AppConfig``)."""

from __future__ import annotations

from aigcrec.config_base import StrictModel


class ContentConfig(StrictModel):
    """Settings of the content stage."""
