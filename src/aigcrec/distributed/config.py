"""Configuration of the Ray engines (``--engine ray``): where the cluster is and how work is spread on it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from aigcrec.config_base import StrictModel


class Autoscaling(StrictModel):
    """Ray Serve autoscaling of one deployment: replicas track ongoing requests per replica."""

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(4.0, gt=0, description="Requests in flight per replica to aim at.")
    num_cpus: float = Field(0.5, gt=0, description="CPUs reserved per replica (fractions share a core).")

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})")
        return self

    def serve_options(self) -> dict:
        """Keyword arguments of ``Deployment.options`` for these settings."""
        return {"autoscaling_config": {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                                       "initial_replicas": max(1, self.min_replicas),
                                       "target_ongoing_requests": self.target_ongoing_requests},
                "ray_actor_options": {"num_cpus": self.num_cpus}}


class DistributedConfig(StrictModel):
    """Settings of the Ray engines for encoding, training and serving."""

    address: str | None = Field(None, description="Ray cluster address ('auto', 'ray://head:10001'); "
                                                     "None starts a local cluster for the job.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local cluster (None = all).")
    encode_workers: int = Field(2, ge=1, description="Encoder actors (each loads the encoders once).")
    encode_batch_size: int = Field(32, ge=1, description="Catalog rows per map_batches call.")
    train_workers: int = Field(2, ge=1, description="Data-parallel training workers (one CPU each).")
    storage_dir: str = Field("ray_train", description="Ray Train run and checkpoint storage, relative to "
                                                       "--out unless absolute or a URI (s3://, gs://).")
    affect: Autoscaling = Field(default_factory=Autoscaling)
    ranking: Autoscaling = Field(default_factory=Autoscaling)
    ingress_cpus: float = Field(0.5, gt=0, description="CPUs of the single HTTP ingress replica (it owns the "
                                                        "SQLite event log and the FAISS index).")

    def storage_under(self, out: str | Path) -> str | Path:
        """``storage_dir`` for a run writing to ``out``: a URI or absolute path as is, else under ``out``."""
        if "://" in self.storage_dir or Path(self.storage_dir).is_absolute():
            return self.storage_dir
        return Path(out) / self.storage_dir
