"""A real uvicorn server in a subprocess: kill -9 during a feedback burst loses no acknowledged event;
SIGTERM drains in-flight requests; several server processes on one SQLite file serve the same state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from aigcrec.service.store import ServiceStore  # noqa: E402

HERE = Path(__file__).resolve().parent
AUTH = {"Authorization": "Bearer test-key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """The support server (test models, synthetic catalog) under uvicorn on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "test_service_support.py"), "--db", str(db), "--port", str(port), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready in 60 s")


def burst(url: str, tag: str, acked: list[str], statuses: list[int], stop: threading.Event) -> None:
    """Send single feedback events until stopped or the server goes away; record acknowledged ones."""
    with httpx.Client(timeout=5) as c:
        i = 0
        while not stop.is_set():
            sid = f"{tag}-{i}"
            try:
                r = c.post(
                    url + "/v1/feedback",
                    headers=AUTH,
                    json={
                        "user_id": f"user-{tag}",
                        "item_id": f"i{i % 50}",
                        "type": "bookmark",
                        "session_id": sid,
                    },
                )
            except httpx.HTTPError:
                return
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked.append(sid)
            i += 1


def run_burst(url: str, proc: subprocess.Popen, sig: int, after_acks: int) -> tuple[list[str], list[int]]:
    acked: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    threads = [threading.Thread(target=burst, args=(url, f"t{t}", acked, statuses, stop)) for t in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < after_acks and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, sig)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    return acked, statuses


def logged_sessions(db: Path) -> set[str]:
    store = ServiceStore(db)
    try:
        return {e["session_id"] for e in store.iter_events(origin="api")}
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_event(tmp_path):
    db = tmp_path / "kill.sqlite"
    proc, url = start_server(db)
    try:
        acked, _ = run_burst(url, proc, signal.SIGKILL, after_acks=150)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 150
    missing = set(acked) - logged_sessions(db)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    # The restarted server serves the users of the burst from their logged history.
    proc, url = start_server(db)
    try:
        rec = httpx.post(url + "/v1/recommend", json={"user_id": "user-t0", "k": 5}, timeout=10).json()
        assert rec["explanation"]["cold_start"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests(tmp_path):
    db = tmp_path / "drain.sqlite"
    proc, url = start_server(db)
    try:
        acked, statuses = run_burst(url, proc, signal.SIGTERM, after_acks=50)
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status names the signal.
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
    assert set(acked) <= logged_sessions(db)


def answering_processes(url: str, tries: int = 40) -> set[int]:
    """PIDs that answer /readyz over fresh connections (the kernel spreads connections over processes)."""
    pids = set()
    for _ in range(tries):
        with httpx.Client(timeout=5) as c:
            pids.add(c.get(url + "/readyz").json()["process"])
    return pids


@pytest.mark.slow
def test_two_server_processes_share_items_and_feedback(tmp_path):
    from test_service_support import png_bytes

    db = tmp_path / "workers.sqlite"
    proc, url = start_server(db, "--workers", "2")
    try:
        deadline = time.monotonic() + 30
        while len(answering_processes(url, 10)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(answering_processes(url)) == 2, "expected both server processes to answer"
        import base64

        with httpx.Client(timeout=10) as c:
            r = c.post(url + "/v1/items", headers=AUTH,
                       json={"item_id": "fresh-1", "title": "new", "image": base64.b64encode(png_bytes()).decode()})
            assert r.status_code == 201, r.text
            r = c.post(url + "/v1/feedback", headers=AUTH,
                       json={"user_id": "shared-user", "item_id": "fresh-1", "type": "bookmark"})
            assert r.status_code == 200, r.text
        posted = time.monotonic()
        time.sleep(0.5)  # > the support server's sync_interval_s (0.1 s)
        seen_by: dict[int, tuple[bool, bool]] = {}
        for _ in range(40):  # fresh connections reach both processes
            with httpx.Client(timeout=10) as c:
                pid = c.get(url + "/readyz").json()["process"]
                cold = c.post(url + "/v1/recommend", json={"user_id": "someone-new", "k": 50}).json()
                warm = c.post(url + "/v1/recommend", json={"user_id": "shared-user", "k": 5}).json()
            fresh = any(it["item_id"] == "fresh-1" for it in cold["items"])
            seen_by[pid] = (fresh, warm["explanation"]["cold_start"] is False)
        assert len(seen_by) == 2 and all(f and w for f, w in seen_by.values()), seen_by
        assert time.monotonic() - posted < 30
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    store = ServiceStore(db)
    try:
        assert store.counts()["items"] == 301  # the catalog imported once, plus the new item
    finally:
        store.close()


@pytest.mark.slow
def test_a_process_that_cannot_start_stops_the_server_with_its_reason(tmp_path):
    """uvicorn's supervisor would restart a failing process forever; the server exits saying why."""
    (tmp_path / "not-a-db").mkdir()  # a folder where the SQLite file should be: every process fails
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "test_service_support.py"), "--db", str(tmp_path / "not-a-db"),
         "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert b"could not start" in out and b"OperationalError" in out, out[-2000:]


def batch_burst(url: str, tag: str, sent: dict[str, dict], stop: threading.Event) -> None:
    """Send feedback batches, each with its own Idempotency-Key, until stopped or the server goes away."""
    with httpx.Client(timeout=5) as c:
        i = 0
        while not stop.is_set():
            key = f"{tag}-batch-{i}"
            batch = {"events": [{"user_id": f"user-{tag}", "item_id": f"i{(i + j) % 50}", "type": "click",
                                 "session_id": f"{key}-{j}"} for j in range(5)]}
            sent[key] = batch  # before the request: an attempt whose answer may be lost
            try:
                c.post(url + "/v1/feedback", headers={**AUTH, "Idempotency-Key": key}, json=batch)
            except httpx.HTTPError:
                return
            i += 1


@pytest.mark.slow
def test_batches_retried_after_kill_9_are_stored_once(tmp_path):
    import tempfile

    leftovers = set(Path(tempfile.gettempdir()).glob("aigcrec-serve-*"))
    db = tmp_path / "idem.sqlite"
    sent: dict[str, dict] = {}
    for _round in range(2):
        proc, url = start_server(db)
        try:
            stop = threading.Event()
            threads = [threading.Thread(target=batch_burst, args=(url, f"r{_round}t{t}", sent, stop)) for t in range(4)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while len(sent) < 40 * (_round + 1) and time.monotonic() < deadline:
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)  # some batches are in flight: committed or not, unacknowledged
            proc.wait(timeout=10)
            stop.set()
            for t in threads:
                t.join(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    proc, url = start_server(db)
    replayed = 0
    try:
        with httpx.Client(timeout=10) as c:  # the client retries every batch it ever sent, with its key
            for key, batch in sent.items():
                r = c.post(url + "/v1/feedback", headers={**AUTH, "Idempotency-Key": key}, json=batch)
                assert r.status_code == 200, r.text
                replayed += r.headers.get("Idempotent-Replayed") == "true"
                assert r.json()["replayed"] is (r.headers.get("Idempotent-Replayed") == "true")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    store = ServiceStore(db)
    try:
        sessions = [e["session_id"] for e in store.iter_events(origin="api")]
    finally:
        store.close()
    want = {e["session_id"] for batch in sent.values() for e in batch["events"]}
    assert len(sessions) == len(set(sessions)), "an event was stored twice"
    assert set(sessions) == want
    assert replayed >= 40  # the batches acknowledged before the kills came back as replays
    assert set(Path(tempfile.gettempdir()).glob("aigcrec-serve-*")) <= leftovers  # kill -9 leaves no folder


def test_the_serve_factory_reports_why_its_process_cannot_start(tmp_path, monkeypatch):
    """`aigcrec serve`'s factory (service.process_app.real_app) runs under workers.run in this process and
    its failure (no saved ranker at ranker_dir) comes back as ServeError with the reason."""
    from aigcrec.config import AppConfig
    from aigcrec.service.config import ServiceConfig
    from aigcrec.service.workers import SPEC_ENV, ServeError, ServeSpec, run
    from aigcrec.service.protocol import LIMITS_ENV

    monkeypatch.setenv(SPEC_ENV, "")  # run() sets both; monkeypatch restores them afterwards
    monkeypatch.setenv(LIMITS_ENV, "")
    spec = ServeSpec(AppConfig().model_dump(mode="json"), str(tmp_path / "catalog"), str(tmp_path / "features"),
                     str(tmp_path / "no-ranker"), str(tmp_path / "events.sqlite"))
    with pytest.raises(ServeError, match="could not start.*no-ranker.*not a saved ranker"):
        run("aigcrec.service.process_app:real_app", spec, ServiceConfig(port=free_port(), workers=1))
