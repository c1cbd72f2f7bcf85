"""Configuration of the online simulation (``aigcrec simulate``; a section of ``AppConfig``)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field, field_validator

from aigcrec.config_base import StrictModel
from aigcrec.content.config import ContentConfig
from aigcrec.service.config import ServiceConfig

PolicyName = Literal["random", "popularity", "affect_blind", "affect_mmei", "affect_oracle", "ceiling",
                     "ceiling_blind"]
POLICY_NAMES: tuple[str, ...] = (
    "random", "popularity", "affect_blind", "affect_mmei", "affect_oracle", "ceiling", "ceiling_blind")
DEFAULT_POLICIES: tuple[str, ...] = POLICY_NAMES[:6]
"""The six policies of issue 18; ``ceiling_blind`` is asked for by name."""


class SimulateConfig(StrictModel):
    """An online A/B on a world through the real HTTP service (docs/simulate.md)."""

    k: int = Field(10, ge=1, le=100, description="Slate length: items shown per session (CTR@k).")
    sessions: int = Field(300, ge=1, le=100_000, description="Sessions per policy and seed.")
    seeds: int = Field(3, ge=1, le=50,
                       description="Seeds (the run's seed, +1, ...): session order and outcome draws.")
    policies: list[PolicyName] = Field(default_factory=lambda: list(DEFAULT_POLICIES),
                                       description="Policies compared, each on the same sessions and draws.")
    session_source: Literal["test", "all"] = Field(
        "test", description="Which of the world's sessions users re-enact: 'test' = the affect test split "
                            "(users MMEI never saw), 'all' = every session.")
    new_item_share: float = Field(
        0.05, ge=0, le=0.5, description="Share of the world's items held out (the newest) and posted through "
                                        "POST /v1/items during the run (the AIGC flood).")
    new_item_batches: int = Field(
        10, ge=1, description="Held-out items arrive in this many equal batches, evenly spaced over the "
                              "sessions (the first before session 0).")
    oracle_signals: bool = Field(
        False, description="affect_oracle also sends the signals (the stated state then replaces only MMEI's "
                           "probabilities, not its embedding).")
    server: Literal["thread", "process"] = Field(
        "thread", description="thread: uvicorn in this process, models loaded once for every run; process: "
                              "`aigcrec serve` in a subprocess per run (needed for workers > 1).")
    workers: int = Field(1, ge=1, le=16, description="Server processes of each service (server: process).")
    session_gap_s: float = Field(600.0, gt=0,
                                 description="Simulated seconds between sessions (the events' timestamps).")
    curve_bins: int = Field(10, ge=1, le=100, description="Bins of simulated time in the curves.")
    start_timeout_s: float = Field(600.0, gt=0, description="Longest wait for a service to be ready.")
    request_timeout_s: float = Field(60.0, gt=0, description="Timeout of one HTTP request.")
    max_run_seconds: float = Field(1800.0, gt=0, description="Wall-time bound of one policy-seed run: stops "
                                                             "early (marked truncated) when reached.")
    max_requests: int = Field(50_000, gt=0, description="HTTP requests one policy-seed run may send.")
    demo_sessions: int = Field(40, ge=1, description="Sessions per policy in the demo's simulate stage.")
    demo_seeds: int = Field(1, ge=1, description="Seeds of the demo's simulate stage.")
    demo_new_item_share: float = Field(0.01, ge=0, le=0.5, description="new_item_share of the demo's stage "
                                       "(each posted item is encoded by the service, once per policy).")
    keep_databases: bool = Field(False, description="Keep each run's SQLite file (runs/<policy>-s<seed>/).")

    @field_validator("policies")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("expected at least one policy")
        if len(set(v)) != len(v):
            raise ValueError(f"expected each policy once, got {v}")
        return v


class RunConfig(Protocol):
    """What a simulation reads of the ``AppConfig`` it is given (the top layer assembles and passes it; this
    package never imports it): the service, content and simulate sections and the seed."""

    service: ServiceConfig
    content: ContentConfig
    simulate: SimulateConfig
    seed: int

    def model_copy(self, *, update: Any = None, deep: bool = False) -> Any: ...

    def model_dump(self, **kwargs: Any) -> dict[str, Any]: ...
