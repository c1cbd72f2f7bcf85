"""The hostile-input reproducers of issue 25, measured against a real ``aigcrec serve`` on loopback.

Each reproducer is sent once (over a fresh connection); we record the answer (status, or "closed"), the
wall time until the answer or the close, and the growth of the server process's peak RSS (VmHWM) across
the request: 0 means the request needed no memory beyond what the server had already used. The server is
``aigcrec serve --catalog WORLD --models STACK/artifacts.json`` with the small real stack of
``service_stack.py`` (default limits, 1 process). Writes ``hostile.json`` and ``hostile.md`` under ``--out``.

    nice -n 10 python benchmarks/service_hostile.py --stack runs/bench-stack --out benchmarks/results/service
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import socket
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_service import free_port, wait_ready  # noqa: E402
from service_stack import build_stack, serve_stack  # noqa: E402

KEY = "bench-key"


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def server_pid(parent: int) -> int:
    """The process that serves (with one worker uvicorn runs the app in the CLI process itself)."""
    kids = [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    return kids[0] if len(kids) == 1 and "uvicorn" in Path(f"/proc/{kids[0]}/cmdline").read_text() else parent


def raw(port: int, payload: bytes, slow: bytes = b"", pace: float = 0.0, wait: float = 60.0) -> tuple[str, float]:
    """Send ``payload`` then ``slow`` byte by byte; return (status line or 'closed', seconds to answer/close)."""
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            s.sendall(payload)
            for b in slow:
                s.sendall(bytes([b]))
                time.sleep(pace)
        except OSError:
            pass
        got = b""
        try:
            while b"\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
    line = got.split(b"\r\n", 1)[0].decode("latin-1")
    return (line.split(" ", 2)[1] if line.startswith("HTTP/") else "closed"), time.perf_counter() - t0


def post(port: int, path: str, body: bytes, headers: dict[str, str] | None = None, chunked: bool = False) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def wav(rate: int, frames: int = 2000) -> str:
    data = bytes(2 * frames)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return base64.b64encode(b"RIFF" + struct.pack("<I", len(body)) + body).decode()


def big_png(side: int) -> str:
    """A real, highly compressible side x side grey PNG (the 116 KB 6300 x 6300 of the issue)."""
    row = b"\x00" + bytes(side)
    raw_rows = zlib.compress(row * side, 9)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    return base64.b64encode(png + chunk(b"IDAT", raw_rows) + chunk(b"IEND", b"")).decode()


def header_only(fmt: str, w: int, h: int) -> str:
    if fmt == "png":
        ihdr = b"IHDR" + struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    elif fmt == "gif":
        data = b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b";"
    else:
        data = b"BM" + bytes(12) + struct.pack("<IiiHH", 40, w, -h, 1, 24) + bytes(24)
    return base64.b64encode(data).decode()


def reproducers(port: int) -> list[tuple[str, Callable[[], tuple[str, float]]]]:
    auth = {"Authorization": f"Bearer {KEY}"}
    j = lambda doc: json.dumps(doc).encode()  # noqa: E731
    events = b'{"events": [' + b",".join([b'{"user_id":"u","item_id":"x","type":"click"}'] * 271_000) + b"]}"
    small_events = b'{"events": [' + b",".join([b'{"user_id":"u","item_id":"x","type":"click"}'] * 20_000) + b"]}"
    cases = [
        ("voice WAV at 999,983 Hz", lambda: raw(port, post(port, "/v1/affect", j({"signals": {"voice": wav(999_983)}})))),
        ("voice WAV at 2,147,483,647 Hz", lambda: raw(port, post(port, "/v1/affect", j({"signals": {"voice": wav(2**31 - 1)}})))),
        ("voice WAV at 191,999 Hz (accepted, bounded resampling)",
         lambda: raw(port, post(port, "/v1/affect", j({"signals": {"voice": wav(191_999, 191_999 * 3)}})))),
        ("lone surrogate in signals.text (/v1/affect)", lambda: raw(port, post(port, "/v1/affect", b'{"signals": {"text": "\\ud800"}}'))),
        ("lone surrogate in signals.text (/v1/recommend)",
         lambda: raw(port, post(port, "/v1/recommend", b'{"user_id": "u", "signals": {"text": "\\ud800"}}'))),
        ("64 MB header line", lambda: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 20) + b"\r\n\r\n")),
        ("10,000 headers", lambda: raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + b"\r\n")),
        ("declared Content-Length never sent",
         lambda: raw(port, b"POST /v1/affect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")),
        ("chunk declared as ffffffffffff bytes",
         lambda: raw(port, b"POST /v1/affect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\n{")),
        ("headers sent 1 byte / 0.2 s", lambda: raw(port, b"GET /healthz HTTP/1.1\r\n", slow=b"X-Slow: " + b"a" * 200, pace=0.2)),
        ("body sent 1 byte / 0.5 s",
         lambda: raw(port, b"POST /v1/affect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n",
                     slow=b'{"signals": {"text": "' + b"a" * 36 + b'"}}', pace=0.5)),
        ("6300 x 6300 PNG as a face", lambda: raw(port, post(port, "/v1/affect", j({"signals": {"face": big_png(6300)}})))),
        ("2000 x 2000 PNG as a face (accepted, downscaled)",
         lambda: raw(port, post(port, "/v1/affect", j({"signals": {"face": big_png(2000)}})))),
        ("64 x 64 grey PNG as an item (the encoder's first run: its one-off allocations)",
         lambda: raw(port, post(port, "/v1/items", j({"title": "small", "image": big_png(64)}), auth))),
        ("4000 x 4000 grey PNG as an item (within max_decoded_bytes: accepted, downscaled, encoded)",
         lambda: raw(port, post(port, "/v1/items", j({"title": "big", "image": big_png(4000)}), auth))),
        ("6300 x 6300 PNG as an item (under the 40 MP item limit, over max_decoded_bytes)",
         lambda: raw(port, post(port, "/v1/items", j({"title": "big", "image": big_png(6300)}), auth))),
        ("15 MB feedback body, 271k events (Content-Length)", lambda: raw(port, post(port, "/v1/feedback", events, auth))),
        ("15 MB feedback body, 271k events (chunked)", lambda: raw(port, post(port, "/v1/feedback", events, auth, chunked=True))),
        ("920 KB feedback body, 20k events (under the byte budget, over the 1,000-event cap)",
         lambda: raw(port, post(port, "/v1/feedback", small_events, auth, chunked=True))),
        ("15 MB feedback body without a key", lambda: raw(port, post(port, "/v1/feedback", events, chunked=True))),
        ("PNG header 20000 x 20000 as an item", lambda: raw(port, post(port, "/v1/items", j({"title": "x", "image": header_only("png", 20000, 20000)}), auth))),
        ("GIF header 20000 x 20000 as an item", lambda: raw(port, post(port, "/v1/items", j({"title": "x", "image": header_only("gif", 20000, 20000)}), auth))),
        ("BMP header 20000 x 20000 as an item", lambda: raw(port, post(port, "/v1/items", j({"title": "x", "image": header_only("bmp", 20000, 20000)}), auth))),
        ('"k": true', lambda: raw(port, post(port, "/v1/recommend", b'{"user_id": "u", "k": true}'))),
        ("duplicate JSON keys", lambda: raw(port, post(port, "/v1/recommend", b'{"user_id": "a", "user_id": "b"}'))),
        ("zero-width character in user_id", lambda: raw(port, post(port, "/v1/recommend", j({"user_id": "u\u200d"})))),
    ]
    return cases


def idempotent_retry(port: int, item_id: str) -> dict:
    """A batch sent twice with one key: the second answer is the stored one and nothing is stored twice."""
    import urllib.request

    key = f"bench-{time.time_ns()}"
    body = json.dumps({"events": [{"user_id": "idem-user", "item_id": item_id, "type": "click", "session_id": key}]}).encode()
    answers = []
    for _ in range(2):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/feedback", body, method="POST", headers={
            "Authorization": f"Bearer {KEY}", "Idempotency-Key": key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answers.append((r.status, json.loads(r.read()), r.headers.get("Idempotent-Replayed")))
    return {"statuses": [a[0] for a in answers], "first_seq": [a[1]["first_seq"] for a in answers],
            "replayed": [a[1]["replayed"] for a in answers], "header": [a[2] for a in answers]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", type=Path, required=True, help="Folder of service_stack.py (built if absent).")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "service")
    args = p.parse_args()
    artifacts = build_stack(args.stack)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve_stack(artifacts, port, Path(tmp) / "service.sqlite")
        try:
            wait_ready(port, proc, 600)
            pid = server_pid(proc.pid)
            import urllib.request

            warm = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", b'{"user_id": "warm"}',
                                          headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(warm, timeout=30):
                pass  # warm the request path once
            rows = []
            for name, run in reproducers(port):
                before = peak_rss_kb(pid)
                status, seconds = run()
                rows.append({"reproducer": name, "answer": status, "seconds": round(seconds, 3),
                             "peak_rss_growth_mb": round((peak_rss_kb(pid) - before) / 1024, 1)})
                print(f"{rows[-1]}", flush=True)
            world = json.loads(artifacts.read_text())["world_dir"]
            from aigcrec.world import load_world

            item = str(load_world(artifacts.parent / world, check_files=False).items["item_id"].iloc[0])
            retry = idempotent_retry(port, item)
            peak_mb = round(peak_rss_kb(pid) / 1024, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    result = {"server": f"aigcrec serve --models {artifacts.parent.name}/artifacts.json (1 process, default limits)",
              "stack": json.loads((artifacts.parent / "stack.json").read_text()),
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
              "server_peak_rss_mb": peak_mb, "rows": rows, "idempotent_retry": retry,
              "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Hostile-input reproducers (issue 25) against `aigcrec serve`",
        "",
        f"Measured {result['measured']} on {result['machine']}; server: {result['server']}; stack: "
        f"`{json.dumps(result['stack']['recipe'])}`. Command: `nice -n 10 python benchmarks/service_hostile.py "
        "--stack STACK --out benchmarks/results/service`. Peak RSS growth: the server's VmHWM after minus before "
        "the request (0 = no memory beyond its earlier peak).",
        "",
        "| reproducer | answer | seconds | peak RSS growth MB |",
        "|---|---|---:|---:|",
        *[f"| {r['reproducer']} | {r['answer']} | {r['seconds']} | {r['peak_rss_growth_mb']} |" for r in rows],
        "",
        f"Server peak RSS at the end: {peak_mb} MB. A feedback batch sent twice with one Idempotency-Key: "
        f"statuses {retry['statuses']}, first_seq {retry['first_seq']}, replayed {retry['replayed']}, "
        f"Idempotent-Replayed header {retry['header']}.",
    ]
    (args.out / "hostile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
