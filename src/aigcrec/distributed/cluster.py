"""Connecting to Ray: an existing cluster (``address``) or a local one started for the duration of a job.

Ray is an optional extra (``pip install 'aigcrec[ray]'``); every engine calls ``require_ray`` first so a
missing install reads as one line saying what to install, not an ImportError deep in a command.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger("aigcrec.distributed")

INSTALL_HINT = "the Ray engine needs the 'ray' extra: pip install 'aigcrec[ray]'"


class RayUnavailable(RuntimeError):
    """Ray is not installed, or no cluster could be started / reached."""


def require_ray():
    """Import and return the ``ray`` module, or raise ``RayUnavailable`` saying what to install."""
    try:
        import ray  # lazy: Ray is the optional [ray] extra
    except ImportError as exc:  # the optional extra is missing
        raise RayUnavailable(f"{INSTALL_HINT} ({exc})") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                need_cpus: float = 0.0) -> Iterator[None]:
    """Use the Ray cluster at ``address`` (``"auto"``, ``"ray://head:10001"``), or start a local one.

    If Ray is already initialised in this process (a test fixture, a notebook) that session is used and
    left running. A local cluster started here (``num_cpus`` CPUs, default all) is shut down on exit.
    ``need_cpus``: CPUs the job's workers reserve; a local cluster (no ``address``: it cannot grow) with
    fewer is refused at once instead of leaving the job waiting for resources forever.
    Usage statistics are off unless the user enabled them explicitly.
    """
    ray = require_ray()
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    if ray.is_initialized():
        _check_capacity(ray, address, need_cpus)
        yield
        return
    if num_cpus is not None and num_cpus < 1:
        raise ValueError(f"num_cpus must be at least 1, got {num_cpus}")
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError... depending on the cause
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise RayUnavailable(f"could not start or reach {where}: {exc}") from exc
    log.info("ray: %s, resources %s", address or "local cluster", ray.cluster_resources())
    try:
        _check_capacity(ray, address, need_cpus)
        yield
    finally:
        ray.shutdown()


def _check_capacity(ray, address: str | None, need_cpus: float) -> None:
    have = float(ray.cluster_resources().get("CPU", 0.0))
    if address is None and need_cpus > have:
        raise RayUnavailable(f"the local Ray cluster has {have:g} CPUs but the job's workers need {need_cpus:g} "
                             "(one each): use fewer workers, or num_cpus / an address with more")
