"""Serving on Ray Serve: the same FastAPI app as ``aigcrec serve``, with the models as autoscaled deployments.

Three deployments (``build_application``):

- ``Affect`` — the affect model (``AffectPredictor``: encoders + MMEI) behind ``predict(text, voice, face)``;
  autoscaled, stateless;
- ``Ranking`` — the ranker (``RankerBundle``) behind ``score(user_id, item_ids, affect, item_features)``;
  autoscaled, stateless;
- ``Ingress`` — one replica running the service's own ``create_app(state)`` (``@serve.ingress``), so the
  HTTP API is the FastAPI service's, route for route. It owns what must have a single writer: the SQLite
  store with the event log, the catalog and the FAISS retrieval index (retrieval runs here, then the
  candidates go to ``Ranking``). Its pipeline talks to the two model deployments through handles
  wrapped as the service's ``AffectModel`` / ``Ranker`` protocols (``RemoteAffectModel``, ``RemoteRanker``).

Model loaders are zero-argument callables (``functools.partial(RankerBundle.load, dir)``) so the
deployments load their weights on the replica, wherever Ray places it, once per replica; the ingress
builds its state around the deployments' clients and loads no model.

Entry points: ``serve_on_ray`` (``aigcrec serve --engine ray``) and ``real_application`` (the real stack
as an application); the ``serve run`` / KubeRay builder, which reads a YAML config, is
``aigcrec.serve_app:app_builder`` in the top layer.
"""

from __future__ import annotations

import functools
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from aigcrec.distributed.cluster import ray_session, require_ray
from aigcrec.distributed.config import DistributedConfig
from aigcrec.affect.predictor import AffectPredictor
from aigcrec.ranking.bundle import RankerBundle
from aigcrec.service.app import create_app
from aigcrec.service.assemble import open_real_state

log = logging.getLogger("aigcrec.distributed")

APP_NAME = "aigcrec"


def _result(response: Any) -> Any:
    """Wait for a handle call from synchronous pipeline code.

    The service calls its models synchronously, sometimes from the ingress's event loop (``recommend``);
    the handle's router runs on its own loop, so blocking here waits for the reply without deadlock
    (the same blocking a local in-process model causes), hence the skipped asyncio check.
    """
    return response.result(_skip_asyncio_check=True)


class RemoteAffectModel:
    """The service's ``AffectModel`` protocol, answered by the ``Affect`` deployment."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self._schema: Any = None

    @property
    def context_schema(self) -> Any:
        """The served model's ``AffectContextSchema`` (asked once; None for a model that states none)."""
        if self._schema is None:
            self._schema = _result(self.handle.context_schema.remote())
        return self._schema

    def predict(self, text: str | None = None, voice: bytes | None = None, face: bytes | None = None):
        return _result(self.handle.predict.remote(text=text, voice=voice, face=face))


class RemoteRanker:
    """The service's ``Ranker`` protocol, answered by the ``Ranking`` deployment.

    ``spec`` (the ranker's feature spec, read once from the deployment) gives the ingress the affect-context
    schema the ranker was trained on (``aigcrec.service.assemble.affect_encoder``).
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self._spec: Any = None
        self._history_len: int | None = None

    @property
    def spec(self) -> Any:
        if self._spec is None:
            self._spec = _result(self.handle.spec.remote())
        return self._spec

    @property
    def history_len(self) -> int:
        """How many of a user's latest positives the served ranker's content profile reads (asked once)."""
        if self._history_len is None:
            self._history_len = _result(self.handle.history_len.remote())
        return self._history_len

    @property
    def affect_dim(self) -> int:
        """Width of the affect context the served ranker reads (from its feature spec; 0 without one)."""
        field = None if self.spec is None else self.spec.affect
        return field.dim if field is not None else 0

    @property
    def affect_schema(self) -> Any:
        """The served ranker's affect-context schema (None without one)."""
        return None if self.spec is None else self.spec.affect_schema()

    def check_context(self, context: Mapping[str, Any] | None) -> None:
        """The deployment's ranker checks the keys (``ValueError`` naming the unknown ones)."""
        if context:
            _result(self.handle.check_context.remote(dict(context)))

    def cache_items(self, item_ids: Sequence[str], item_features: Mapping[str, np.ndarray] | None = None) -> int:
        """Nothing is cached on this side: each replica scores with the bundle it loaded (0 items)."""
        return 0

    def score(self, user_id: str, item_ids: Sequence[str], affect_vector: np.ndarray | None = None,
              item_features: Mapping[str, np.ndarray] | None = None, history: Sequence[str] | None = None,
              history_features: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return _result(self.handle.score.remote(
            user_id, list(item_ids), affect_vector, None if item_features is None else dict(item_features),
            None if history is None else list(history), None if history_features is None else dict(history_features)))


class AffectServer:
    """Body of the ``Affect`` deployment: one loaded affect model per replica."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self.model = load()

    def context_schema(self) -> Any:
        """The loaded model's ``AffectContextSchema`` (an ``AffectPredictor``'s; None for one without)."""
        return getattr(self.model, "context_schema", None)

    def predict(self, text: str | None = None, voice: bytes | None = None, face: bytes | None = None):
        return self.model.predict(text=text, voice=voice, face=face)


class RankingServer:
    """Body of the ``Ranking`` deployment: one loaded ranker per replica."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self.ranker = load()

    def spec(self) -> Any:
        """The loaded ranker's feature spec (a ``RankerBundle``'s ``spec``)."""
        return self.ranker.spec

    def history_len(self) -> int:
        """The loaded ranker's ``history_len`` (a ``RankerBundle``'s: 0 when its model reads no profile)."""
        return int(self.ranker.history_len)

    def check_context(self, context: dict[str, Any]) -> None:
        self.ranker.check_context(context)

    def score(self, user_id: str, item_ids: list[str], affect_vector: np.ndarray | None = None,
              item_features: dict[str, np.ndarray] | None = None, history: list[str] | None = None,
              history_features: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        return self.ranker.score(user_id, item_ids, affect_vector, item_features, history=history,
                                 history_features=history_features)


class IngressServer:
    """Body of the ``Ingress`` deployment: the service state with remote models, served by ``create_app``.

    ``open_state(ranker=..., affect_model=...)`` builds the ``ServiceState`` on the replica (store,
    catalog, retrieval index); ``affect`` is None when the service runs without an affect model.
    """

    def __init__(self, open_state: Callable[..., Any], ranking: Any, affect: Any = None) -> None:
        self.state = open_state(ranker=RemoteRanker(ranking),
                                affect_model=None if affect is None else RemoteAffectModel(affect))

    def __serve_build_asgi_app__(self):
        return create_app(self.state)


def open_served_state(config: Any, paths: Any, db_path: Any, ranker: Any, affect_model: Any = None):
    """``aigcrec serve``'s state (``aigcrec.service.assemble.open_real_state``) with the given models.

    The ingress passes the clients of its model deployments (``RemoteRanker``, ``RemoteAffectModel``), so
    the ranker and the affect model are loaded once per deployment replica and never in the ingress;
    scoring and affect run in their deployments.
    """

    return open_real_state(config, paths, db_path, ranker=ranker, affect=affect_model)


def build_application(open_state: Callable[..., Any], load_ranker: Callable[[], Any],
                      load_affect: Callable[[], Any] | None = None,
                      settings: DistributedConfig | None = None):
    """The Ray Serve application: ``Ingress`` bound to ``Ranking`` (and ``Affect`` when given)."""
    require_ray()
    from ray import serve  # lazy: Ray is the optional [ray] extra

    s = settings or DistributedConfig()
    ranking = serve.deployment(RankingServer, name="Ranking").options(**s.ranking.serve_options())
    ingress = serve.deployment(serve.ingress()(IngressServer), name="Ingress", num_replicas=1,
                               ray_actor_options={"num_cpus": s.ingress_cpus})
    affect = None
    if load_affect is not None:
        affect = serve.deployment(AffectServer, name="Affect").options(**s.affect.serve_options()).bind(load_affect)
    return ingress.bind(open_state, ranking.bind(load_ranker), affect)


def start(application: Any, host: str = "127.0.0.1", port: int = 8000, route_prefix: str = "/") -> str:
    """Deploy ``application`` on the current Ray cluster (``ray_session``) and return its base URL."""
    from ray import serve  # lazy: Ray is the optional [ray] extra

    serve.start(http_options={"host": host, "port": port})
    serve.run(application, name=APP_NAME, route_prefix=route_prefix, blocking=False)
    url = f"http://{host}:{port}{route_prefix.rstrip('/')}"
    log.info("ray serve: application %r ready at %s", APP_NAME, url)
    return url


def real_application(config: Any, paths: Any, db_path: Any, settings: DistributedConfig | None = None):
    """The Serve application of ``aigcrec serve``'s real stack.

    ``config``: the ``AppConfig``; ``paths``: ``aigcrec.service.assemble.ServicePaths`` of the catalog and
    models (the ``Affect`` deployment exists when ``paths.mmei_dir`` is set); ``db_path``: the SQLite file;
    ``settings``: autoscaling (default ``config.distributed``). Nothing is loaded here: each replica loads
    its model by path when it starts.
    """

    svc = config.service
    load_affect = (functools.partial(AffectPredictor.load, paths.mmei_dir, runtime=svc.model_runtime,
                                     threads=svc.torch_threads) if paths.mmei_dir else None)
    return build_application(functools.partial(open_served_state, config, paths, db_path),
                             functools.partial(RankerBundle.load, paths.ranker_dir, svc.model_runtime,
                                               svc.torch_threads), load_affect,
                             settings or config.distributed)


def serve_on_ray(config: Any, paths: Any, db_path: Any, address: str | None = None,
                 num_cpus: int | None = None, settings: DistributedConfig | None = None) -> None:
    """``aigcrec serve --engine ray``: the real stack of ``aigcrec serve`` on Ray Serve until Ctrl-C / SIGTERM.

    On exit the application is deleted (other Serve applications on a shared cluster keep running) and a
    local cluster started here is stopped.

    ``config`` is the ``AppConfig`` (``service.host`` / ``service.port`` are where the Serve proxy listens;
    ``distributed`` gives the autoscaling settings and, when ``address`` / ``num_cpus`` / ``settings`` are
    not given, the cluster); ``paths`` and ``db_path`` as in ``real_application``.
    """

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM (Kubernetes, systemd, kill) stops like Ctrl-C

    settings = settings or config.distributed
    with ray_session(address or settings.address, num_cpus or settings.num_cpus):
        from ray import serve  # lazy: Ray is the optional [ray] extra

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            start(real_application(config, paths, db_path, settings), config.service.host, config.service.port)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            log.info("ray serve: stopping")
        finally:
            signal.signal(signal.SIGTERM, previous)
            serve.delete(APP_NAME)
