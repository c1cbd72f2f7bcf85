"""The real service on a loopback port, one per simulated run (a fresh SQLite file each).

``ThreadService``: the app of ``aigcrec serve`` (``service.app.create_app`` over ``open_real_state``) under
uvicorn in a thread of this process, with the models loaded once for every run (``Models``): a run starts in
seconds. ``ProcessService``: ``aigcrec serve`` itself in a subprocess (``service.workers`` processes), the
models loaded by each start. Both bind 127.0.0.1 only and need the API key for writes; the simulator talks
to them over HTTP (``client``) like any client.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import httpx
import uvicorn
import yaml

from aigcrec.affect.predictor import AffectPredictor
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.service.app import create_app
from aigcrec.service.artifacts import ArtifactsManifest
from aigcrec.service.assemble import ServicePaths, load_content_encoder, open_real_state
from aigcrec.service.protocol import LIMITS_ENV, GuardedH11Protocol
from aigcrec.simulate.config import RunConfig

log = logging.getLogger("aigcrec.simulate")

HOST = "127.0.0.1"


@dataclass
class Models:
    """The models every thread-mode service of a simulation shares (loaded once)."""

    ranker: Any
    affect: Any
    encoder: Any

    @classmethod
    def load(cls, config: RunConfig, paths: ServicePaths, with_affect: bool) -> "Models":
        svc = config.service
        ranker = RankerBundle.load(paths.ranker_dir, svc.model_runtime, svc.torch_threads)
        affect = None
        if with_affect:
            if paths.mmei_dir is None:
                raise FileNotFoundError("the models have no affect model (mmei_dir), which affect_mmei and "
                                        "affect_oracle need")
            affect = AffectPredictor.load(paths.mmei_dir, runtime=svc.model_runtime,
                                          threads=svc.torch_threads)
        return cls(ranker, affect, load_content_encoder(paths, config))


def service_config(config: RunConfig, workers: int = 1) -> RunConfig:
    """The run's config for a simulated service: loopback, keyed writes, NORMAL fsync (a throwaway file),
    ``limits.max_k`` at least the slate length."""
    cfg = config.model_copy(deep=True)
    svc = cfg.service
    svc.host, svc.demo_mode, svc.workers, svc.sqlite_synchronous = HOST, False, workers, "NORMAL"
    svc.api_key = None
    svc.limits.max_k = max(svc.limits.max_k, cfg.simulate.k)
    return cfg


def client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    """A keep-alive HTTP client of the service; ``trust_env=False``: loopback, never through a proxy."""
    return httpx.Client(base_url=base_url, timeout=timeout_s, trust_env=False,
                        headers={"Authorization": f"Bearer {api_key}"})


def wait_ready(base_url: str, deadline: float, alive) -> None:
    """Poll ``/readyz`` until 200; ``RuntimeError`` when ``alive()`` turns false or the deadline passes."""
    with httpx.Client(base_url=base_url, timeout=2.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("the service stopped before it was ready")
            try:
                if http.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"the service at {base_url} was not ready in time")


class ThreadService:
    """``create_app(open_real_state(...))`` under uvicorn in a thread, on an ephemeral loopback port."""

    def __init__(self, config: RunConfig, paths: ServicePaths, db: Path, models: Models,
                 use_affect: bool) -> None:
        self.config = service_config(config)
        self.api_key = secrets.token_hex(16)
        self.config.service.api_key = self.api_key
        self.paths = paths if use_affect else replace(paths, mmei_dir=None)
        self.db, self.models, self.use_affect = Path(db), models, use_affect
        self.base_url = ""
        self._server: Optional[uvicorn.Server] = None
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "ThreadService":
        m = self.models
        state = open_real_state(self.config, self.paths, self.db, ranker=m.ranker,
                                affect=m.affect if self.use_affect else None, encoder=m.encoder)
        limits = self.config.service.limits
        os.environ.setdefault(LIMITS_ENV, json.dumps({"header_timeout_s": limits.header_timeout_s}))
        server = uvicorn.Server(uvicorn.Config(
            create_app(state), host=HOST, port=0, log_level="warning", access_log=False, lifespan="on",
            http=GuardedH11Protocol, h11_max_incomplete_event_size=limits.max_header_bytes,
            timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # used as a float
            limit_concurrency=limits.max_connections))
        self._server = server
        self._thread = threading.Thread(target=server.run, name="simulate-service", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.config.simulate.start_timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service thread did not start (see the log above)")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{HOST}:{port}"
        wait_ready(self.base_url, deadline, self._thread.is_alive)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=self.config.service.graceful_shutdown_s + 10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ProcessService:
    """``aigcrec serve --models <run>/artifacts.json --db <run>/service.sqlite`` in a subprocess; its output
    goes to ``<run>/service.log`` (the service logs no signal content)."""

    def __init__(self, config: RunConfig, paths: ServicePaths, db: Path, use_affect: bool,
                 run_dir: Path) -> None:
        self.config = service_config(config, config.simulate.workers)
        self.api_key = secrets.token_hex(16)
        self.paths = paths if use_affect else replace(paths, mmei_dir=None)
        self.db, self.run_dir = Path(db), Path(run_dir)
        self.base_url = ""
        self._proc: Optional[subprocess.Popen] = None

    def _files(self) -> tuple[Path, Path]:
        p = self.paths
        def absolute(path: Optional[Path]) -> Optional[str]:
            return None if path is None else str(Path(path).resolve())

        manifest = ArtifactsManifest(
            catalog_dir=absolute(p.catalog_dir), layout="world", feature_store=absolute(p.feature_store),
            ranker_dir=absolute(p.ranker_dir), content_dir=absolute(p.content_dir),
            mmei_dir=absolute(p.mmei_dir))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        manifest_path = manifest.save(self.run_dir / "models")
        cfg_path = self.run_dir / "service.yaml"
        data = self.config.model_dump(mode="json")
        cfg_path.write_text(yaml.safe_dump({"seed": data["seed"], "service": data["service"],
                                            "content": data["content"]}), encoding="utf-8")
        return manifest_path, cfg_path

    def __enter__(self) -> "ProcessService":
        manifest_path, cfg_path = self._files()
        port = _free_port()
        env = {**os.environ, "AIGCREC_API_KEY": self.api_key}
        cmd = [sys.executable, "-m", "aigcrec.cli.main", "serve", "--models", str(manifest_path),
               "--db", str(self.db), "--host", HOST, "--port", str(port),
               "--workers", str(self.config.service.workers), "--config", str(cfg_path)]
        self._log = open(self.run_dir / "service.log", "wb")  # noqa: SIM115 - closed in __exit__
        self._proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.base_url = f"http://{HOST}:{port}"
        try:
            wait_ready(self.base_url, time.monotonic() + self.config.simulate.start_timeout_s,
                       lambda: self._proc.poll() is None)
        except RuntimeError as exc:
            self.__exit__()
            tail = (self.run_dir / "service.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; the end of {self.run_dir / 'service.log'}:\n{tail}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=self.config.service.graceful_shutdown_s + 20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
