"""Configuration of the service stage (a section of ``AppConfig``)."""

from __future__ import annotations

from aigcrec.config_base import StrictModel


class ServiceConfig(StrictModel):
    """Settings of the service stage."""
