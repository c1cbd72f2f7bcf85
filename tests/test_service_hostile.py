"""Hostile input, class by class: each costs a bounded amount before it is refused with a 4xx (or a closed
connection), never a 5xx or an unbounded wait. In-process where the app alone decides; a real uvicorn
subprocess on loopback where the connection does (header size, slow headers, bodies never sent).

Classes: audio headers (sample rate, channels, format), images (pixel budgets from the header, faces
downscaled), strings (lone surrogates, invisible characters, NFC), JSON (duplicate keys, booleans as
numbers), writes (auth before the body, the feedback byte budget while streaming, 413 type), idempotent
writes, request deadlines, connection limits; and a property test over the request models (no 5xx).
Cost and latency are measured in ``benchmarks/service_hostile.py``, not asserted here.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import struct
import time
import typing

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aigcrec.service import api_models  # noqa: E402
from aigcrec.service.app import create_app  # noqa: E402
from aigcrec.service.config import InputLimits  # noqa: E402
from aigcrec.service.guards import RequestGuard  # noqa: E402
from test_service_support import KeywordAffect, open_state, png_bytes, wav_bytes  # noqa: E402

AUTH = {"Authorization": "Bearer test-key"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class RecordingAffect(KeywordAffect):
    """Keeps the size of the last face it was given (to see the downscale)."""

    face_size: tuple[int, int] | None = None

    def predict(self, text=None, voice=None, face=None):
        if face is not None:
            from PIL import Image

            with Image.open(io.BytesIO(face)) as img:
                RecordingAffect.face_size = img.size
        return super().predict(text=text, voice=voice, face=face)


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    st = open_state(tmp_path_factory.mktemp("hostile") / "s.sqlite", n_items=60)
    st.pipeline.affect_model = RecordingAffect()
    return st


@pytest.fixture(scope="module")
def client(state):
    with TestClient(create_app(state)) as c:
        yield c


def problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def wav_header(rate: int, channels: int = 1, bits: int = 16, frames: int = 2000, fmt: int = 1) -> bytes:
    """A RIFF/WAVE file with any header values (the samples are zeros)."""
    block = channels * bits // 8
    data = bytes(frames * block)
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ------------------------------------------------------------------------------------------------ audio


@pytest.mark.parametrize("rate", [999_983, 2_147_483_647, 7_999, 192_001, 1])
def test_sample_rates_outside_the_range_are_refused_from_the_header(client, rate):
    body = problem(client.post("/v1/affect", json={"signals": {"voice": b64(wav_header(rate))}}), 422)
    assert f"got {rate} Hz" in body["detail"] and "8000-192000" in body["detail"]


def test_audio_channels_and_formats_are_checked(client):
    assert "channels" in problem(
        client.post("/v1/affect", json={"signals": {"voice": b64(wav_header(16000, channels=9))}}), 422
    )["detail"]
    ok = client.post("/v1/affect", json={"signals": {"voice": b64(wav_header(191_999, frames=4000))}})
    assert ok.status_code == 200, ok.text  # a prime-ish rate inside the range: bounded resampling
    assert ok.json()["modalities_used"] == ["voice"]


def test_resampling_is_bounded_for_any_rate():
    from aigcrec.affect.inputs import MAX_RESAMPLE_FACTOR, InputError, decode_voice, resample_factors

    for rate in (8_000, 11_025, 44_100, 96_001, 191_999, 768_000):
        up, down = resample_factors(rate, 16_000)
        assert max(up, down) <= MAX_RESAMPLE_FACTOR
        assert abs(up / down - 16_000 / rate) <= 16_000 / rate / MAX_RESAMPLE_FACTOR
    out = decode_voice((np.zeros(191_999, np.float32), 191_999), 16_000, 30.0)
    assert abs(len(out) - 16_000) < 20
    with pytest.raises(InputError, match="sample rate"):
        decode_voice((np.zeros(10, np.float32), 999_983), 16_000, 30.0)


# ----------------------------------------------------------------------------------------------- images


def image_header(fmt: str, width: int, height: int) -> bytes:
    """Just the header of a PNG, GIF or BMP claiming ``width x height`` (no pixel data)."""
    if fmt == "png":
        import zlib

        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + ihdr
        return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    if fmt == "gif":
        return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b";"
    return b"BM" + bytes(12) + struct.pack("<IiiHH", 40, width, -height, 1, 24) + bytes(24)


@pytest.mark.parametrize("fmt", ["png", "gif", "bmp"])
def test_images_over_the_pixel_limit_are_413_from_the_header(client, fmt):
    huge = b64(image_header(fmt, 20_000, 20_000))  # 400 MP: over PIL's own limit too
    body = problem(client.post("/v1/items", headers=AUTH, json={"title": "x", "image": huge}), 413)
    assert body["type"].endswith("/too-large") and "20000x20000" in body["detail"]
    problem(client.post("/v1/affect", json={"signals": {"face": huge}}), 413)


def test_faces_have_a_far_smaller_pixel_budget_and_are_downscaled(client, state):
    limits = state.config.limits
    assert limits.max_face_pixels * 5 <= limits.max_image_pixels
    side = int(limits.max_face_pixels**0.5) + 10  # just over the face budget, far under the item budget
    problem(client.post("/v1/affect", json={"signals": {"face": b64(image_header("png", side, side))}}), 413)
    big = png_bytes(size=(1500, 900))
    r = client.post("/v1/affect", json={"signals": {"face": b64(big)}})
    assert r.status_code == 200, r.text
    assert max(RecordingAffect.face_size) == limits.face_side  # downscaled before detection
    client.post("/v1/affect", json={"signals": {"face": b64(png_bytes(size=(40, 30)))}})
    assert RecordingAffect.face_size == (40, 30)  # small faces pass unchanged


def _image(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format=fmt)
    return buf.getvalue()


def test_item_images_are_decoded_within_a_byte_budget_and_downscaled(client, state):
    limits = state.config.limits
    seen: list[tuple] = []
    encoder = state.pipeline.encoder
    original = encoder.encode_item

    def recording(image, *a, **k):
        from PIL import Image

        with Image.open(io.BytesIO(image)) as img:
            seen.append(img.size)
        return original(image, *a, **k)

    side = int((limits.max_decoded_bytes / 4) ** 0.5) + 10  # RGB is 4 bytes a pixel decoded
    assert side * side < limits.max_image_pixels  # under the pixel limit, over the decoded-bytes budget
    over = _image("RGB", (side, side), "PNG")  # a few KB of PNG that would decode to > the budget
    body = problem(client.post("/v1/items", headers=AUTH, json={"title": "x", "image": b64(over)}), 413)
    assert "max_decoded_bytes" in body["detail"] and f"{side}x{side}" in body["detail"]
    grey = _image("L", (side, side), "PNG")  # the same size in 1-byte grey fits the budget
    jpeg = _image("RGB", (side * 2, side * 2), "JPEG")  # JPEG decodes at a reduced scale: within the budget
    encoder.encode_item = recording
    try:
        for i, data in enumerate((grey, jpeg, _image("P", (1500, 700), "GIF"), png_bytes((1, 2, 3)))):
            r = client.post("/v1/items", headers=AUTH, json={"item_id": f"big-{i}", "title": "t", "image": b64(data)})
            assert r.status_code == 201, r.text
    finally:
        encoder.encode_item = original
    assert all(max(s) == limits.item_side for s in seen[:3]), seen  # downscaled before the encoder
    assert max(seen[3]) < limits.item_side  # small images pass unchanged
    stored = client.get("/v1/items/big-0/image")
    assert stored.status_code == 200 and stored.content == grey  # the upload itself is what is served


# ---------------------------------------------------------------------------------------------- strings


def _is_str(tp) -> bool:
    return tp is str or (typing.get_origin(tp) is typing.Annotated and typing.get_args(tp)[0] is str)


def string_fields(model: type) -> typing.Iterator[tuple]:
    """Paths to every string field of a request model (nested models and lists of models included)."""
    for name, field in model.model_fields.items():
        ann = field.annotation
        options = [a for a in typing.get_args(ann) if a is not type(None)] if typing.get_origin(ann) is typing.Union else [ann]
        for tp in options:
            prefix: tuple = (name,)
            if typing.get_origin(tp) is list:
                tp, prefix = typing.get_args(tp)[0], (name, 0)
            if isinstance(tp, type) and issubclass(tp, api_models.BaseModel):
                yield from ((*prefix, *sub) for sub in string_fields(tp))
            elif _is_str(tp):
                yield prefix


VALID = {
    "/v1/recommend": {"user_id": "u", "signals": {"text": "hi", "voice": None, "face": None},
                      "stated": {"emotion": "joy", "intent": "relax"}},
    "/v1/affect": {"signals": {"text": "hi"}},
    "/v1/items": {"item_id": "new", "title": "t", "tags": [{"text": "a", "lang": "en"}], "creator_id": "c",
                  "style": "s", "image": b64(png_bytes())},
    "/v1/feedback": {"user_id": "u", "item_id": "i1", "type": "click", "session_id": "s"},
}
MODELS = {"/v1/recommend": api_models.RecommendRequest, "/v1/affect": api_models.AffectRequest,
          "/v1/items": api_models.ItemIn, "/v1/feedback": api_models.FeedbackEvent}


def with_value(doc: dict, path: tuple, value) -> dict:
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize("route", sorted(MODELS))
def test_lone_surrogates_are_422_on_every_string_field(client, route):
    paths = list(string_fields(MODELS[route]))
    assert paths, route
    for path in paths:
        for bad in ("\ud800", "ok\udfff", "\ufffe"):
            body = json.dumps(with_value(VALID[route], path, bad))  # \\uXXXX escapes: valid JSON text
            r = client.post(route, content=body, headers={**AUTH, "content-type": "application/json"})
            assert r.status_code == 422, (route, path, r.text)
            assert any(str(path[-1]) in e["loc"] for e in r.json()["errors"]), r.json()


def test_ids_refuse_invisible_and_control_characters_and_are_nfc(client):
    for bad in ("u\u200b", "u\u200d", "\u202eu", "u\x00", "u\x7f"):
        problem(client.post("/v1/recommend", json={"user_id": bad}), 422)
        problem(client.post("/v1/feedback", headers=AUTH, json={"user_id": bad, "item_id": "i1", "type": "click"}), 422)
    decomposed, composed = "cafe\u0301-user", "caf\u00e9-user"
    r = client.post("/v1/feedback", headers=AUTH, json={"user_id": decomposed, "item_id": "i3", "type": "bookmark"})
    assert r.status_code == 200, r.text
    rec = client.post("/v1/recommend", json={"user_id": composed}).json()
    assert rec["user_id"] == composed and rec["explanation"]["cold_start"] is False  # one user, one spelling


# ------------------------------------------------------------------------------------------------- JSON


def test_json_is_parsed_strictly(client):
    raw = {"content-type": "application/json", **AUTH}
    problem(client.post("/v1/recommend", content=b'{"user_id": "a", "user_id": "b"}', headers=raw), 422)
    problem(client.post("/v1/recommend", json={"user_id": "a", "k": True}), 422)
    problem(client.post("/v1/recommend", json={"user_id": "a", "exclude_seen": 1}), 422)
    problem(client.post("/v1/recommend", content=b'{"user_id": "a", "k": NaN}', headers=raw), 422)
    problem(client.post("/v1/recommend", content=b'{"user_id": "\xff"}', headers=raw), 422)
    event = {"user_id": "a", "item_id": "i1", "type": "dwell", "value": True}
    problem(client.post("/v1/feedback", headers=AUTH, json=event), 422)


def test_a_zero_timestamp_is_stored_as_given(client, state):
    r = client.post("/v1/feedback", headers=AUTH,
                    json={"user_id": "epoch", "item_id": "i2", "type": "click", "timestamp": 0})
    assert r.status_code == 200, r.text
    seq = r.json()["first_seq"]
    assert [e["ts"] for e in state.store.iter_events("api") if e["seq"] == seq] == [0.0]


# ----------------------------------------------------------------------------------------------- writes


async def asgi_post(
    app, path: str, chunks: list[bytes], headers: dict[str, str], complete: bool = True
) -> tuple[int, dict, int]:
    """POST through the raw ASGI interface; returns (status, body, body chunks the app pulled). With
    ``complete=False`` the body never ends (the client stops sending after ``chunks``)."""
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": pulled < len(chunks) or not complete}
        await asyncio.sleep(3600)  # a body never sent
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()], "client": ("10.0.0.1", 1),
             "server": ("127.0.0.1", 80), "scheme": "http", "http_version": "1.1", "root_path": "",
             "asgi": {"version": "3.0"}}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


def test_writes_are_authorised_before_the_body_is_read(client):
    chunks = [b'{"events": [' + b'{"user_id":"u","item_id":"i1","type":"click"},' * 1000] * 40
    status, body, pulled = asyncio.run(asgi_post(client.app, "/v1/feedback", chunks, {}))
    assert status == 401 and pulled == 0, (status, pulled)
    status, _, pulled = asyncio.run(
        asgi_post(client.app, "/v1/items", chunks, {"authorization": "Bearer wrong"})
    )
    assert status == 401 and pulled == 0


def test_the_feedback_budget_stops_reading_while_streaming(client, state):
    chunk = b'{"user_id":"u","item_id":"i1","type":"click"},' * 2000  # ~96 KB a chunk
    chunks = [b'{"events": ['] + [chunk] * 160 + [b"]}"]  # ~15 MB, chunked (no Content-Length)
    status, body, pulled = asyncio.run(asgi_post(client.app, "/v1/feedback", chunks, AUTH))
    assert status == 413 and body["type"].endswith("/too-large"), body
    limit = state.config.limits.max_feedback_bytes
    assert pulled <= limit // len(chunk) + 2  # stopped reading at the budget, long before the end
    declared = client.post("/v1/feedback", headers=AUTH, content=b"[" + b" " * (limit + 1) + b"]")
    assert problem(declared, 413)["type"] == body["type"]  # one type for Content-Length and chunked bodies


def test_a_batch_over_the_event_cap_is_413(client, state):
    n = state.config.limits.max_feedback_batch + 1
    events = [{"user_id": "u", "item_id": "i1", "type": "click"}] * n
    problem(client.post("/v1/feedback", headers=AUTH, json={"events": events}), 413)


def test_the_event_cap_is_counted_while_streaming(client, state):
    cap = state.config.limits.max_feedback_batch
    event = b'{"user_id":"u\\"[,{","item_id":"i1","type":"click","context":{"a":[1,{"b":2}]}},'
    chunks = [b'{"events": ['] + [event] * (cap + 1) + [event] * 5000 + [b"]}"]  # one event a chunk
    status, body, pulled = asyncio.run(asgi_post(client.app, "/v1/feedback", chunks, AUTH))
    assert status == 413 and body["type"].endswith("/too-large") and "events" in body["detail"], body
    assert pulled == cap + 1  # the comma after event `cap` starts one more: refused there, the rest never read
    chunks = [b'{"events": ['] + [event] * (cap - 1) + [event[:-1], b"]}"]
    status, body, _ = asyncio.run(asgi_post(client.app, "/v1/feedback", chunks, AUTH))
    assert status != 413, body  # exactly the cap (strings holding brackets and commas, nested objects) passes


def test_idempotent_feedback_is_stored_once_and_says_it_was_replayed(client, state):
    batch = {"events": [{"user_id": "idem", "item_id": "i1", "type": "click", "session_id": "idem-1"},
                        {"user_id": "idem", "item_id": "i2", "type": "bookmark", "session_id": "idem-2"}]}
    key = {**AUTH, "Idempotency-Key": "batch-0001"}
    first = client.post("/v1/feedback", headers=key, json=batch)
    again = client.post("/v1/feedback", headers=key, json=batch)
    assert first.status_code == again.status_code == 200
    assert first.json()["replayed"] is False and "Idempotent-Replayed" not in first.headers
    assert again.json()["replayed"] is True and again.headers["Idempotent-Replayed"] == "true"
    assert {k: v for k, v in again.json().items() if k != "replayed"} == {
        k: v for k, v in first.json().items() if k != "replayed"}
    sessions = [e["session_id"] for e in state.store.iter_events("api") if e["user_id"] == "idem"]
    assert sorted(sessions) == ["idem-1", "idem-2"]
    other = {"events": [{"user_id": "idem", "item_id": "i3", "type": "click"}]}
    assert problem(client.post("/v1/feedback", headers=key, json=other), 422)["type"].endswith("/idempotency-key-reused")
    problem(client.post("/v1/feedback", headers={**AUTH, "Idempotency-Key": "has space"}, json=batch), 422)


def test_idempotent_item_posts_encode_once(client, state):
    calls = []
    encoder = state.pipeline.encoder
    original = encoder.encode_item
    encoder.encode_item = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        doc = {"item_id": "idem-item", "title": "t", "image": b64(png_bytes((1, 2, 3)))}
        key = {**AUTH, "Idempotency-Key": "item-0001"}
        first = client.post("/v1/items", headers=key, json=doc)
        again = client.post("/v1/items", headers=key, json=doc)
    finally:
        encoder.encode_item = original
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["replayed"] is True
    assert len(calls) == 1  # the replay is answered from the store, not encoded again (and no 409)


# ---------------------------------------------------------------------------------------------- deadlines


def guarded(limits: InputLimits, delay: float = 0.0):
    async def app(scope, receive, send):
        while True:
            message = await receive()
            if not message.get("more_body"):
                break
        await asyncio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    from aigcrec.service.problems import Problem

    async def handling(scope, receive, send):  # what the app's exception handlers do for Problem
        try:
            await app(scope, receive, send)
        except Problem as exc:
            await exc.response()(scope, receive, send)

    return RequestGuard(handling, limits)


def test_bodies_never_sent_and_slow_requests_hit_their_deadlines():
    limits = InputLimits(body_timeout_s=0.2, request_timeout_s=0.4, max_headers=5)
    status, body, _ = asyncio.run(asgi_post(guarded(limits), "/x", [b"{"], {"content-length": "100"}, complete=False))
    assert status == 408 and body["type"].endswith("/timeout")
    status, body, _ = asyncio.run(asgi_post(guarded(limits, delay=5), "/x", [b"{}"], {}))
    assert status == 503 and body["type"].endswith("/timeout")  # not after the handler's 5 s
    many = {f"x-h{i}": "v" for i in range(6)}
    status, _, pulled = asyncio.run(asgi_post(guarded(limits), "/x", [b"{}"], many))
    assert status == 431 and pulled == 0


def test_affect_has_a_wall_time_budget(tmp_path):
    class SlowAffect(KeywordAffect):
        def predict(self, **kw):
            time.sleep(1.0)
            return super().predict(**kw)

    st = open_state(tmp_path / "slow.sqlite", n_items=30, limits=InputLimits(affect_timeout_s=0.2))
    st.pipeline.affect_model = SlowAffect()
    with TestClient(create_app(st)) as c:
        body = problem(c.post("/v1/affect", json={"signals": {"text": "happy"}}), 503)
        assert body["type"].endswith("/timeout")


# --------------------------------------------------------------------------------------------- connections


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_service_durability import start_server

    limits = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "request_timeout_s": 2.0, "max_header_bytes": 8192,
              "keep_alive_s": 1.0}
    proc, url = start_server(tmp_path_factory.mktemp("conn") / "c.sqlite", "--limits", json.dumps(limits))
    yield url.rsplit(":", 1)[1]
    proc.terminate()
    proc.wait(timeout=20)


WAIT_S = 5.0
"""How long a client waits for the server to answer and close (every limit in the test server is far shorter)."""


def exchange(
    port: str, payload: bytes, pace: float = 0.0, slow: bytes = b"", wait: float = WAIT_S
) -> tuple[bytes, float]:
    """Send ``payload`` at once, then ``slow`` byte by byte every ``pace`` s; return what came back and when
    the server closed the connection (seconds after the start; inf when it did not within ``wait``)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", int(port)), timeout=wait) as s:
        try:
            s.sendall(payload)
            if pace:
                for b in slow:
                    s.sendall(bytes([b]))
                    time.sleep(pace)
        except OSError:
            pass  # the server closed the connection while we were still sending
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except (socket.timeout, OSError):
            return got, float("inf")
    return got, time.monotonic() - t0


@pytest.mark.slow
def test_connection_limits_are_enforced_by_the_server(server):
    head = b"POST /v1/affect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    got, closed = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert got.split(b" ")[1] in (b"400", b"431") and closed < WAIT_S, got[:100]
    many = b"".join(b"X-%d: v\r\n" % i for i in range(150))
    got, closed = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert got.startswith(b"HTTP/1.1 431") and closed < WAIT_S, got[:100]
    got, closed = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", pace=0.02, slow=b"X-Slow: " + b"a" * 60)
    assert got == b"" and closed < WAIT_S  # slow headers: closed at header_timeout_s
    got, closed = exchange(server, head + b"Content-Length: 1000\r\n\r\n{")
    assert got.startswith(b"HTTP/1.1 408") and closed < WAIT_S, got[:100]
    got, closed = exchange(server, head + b"Transfer-Encoding: chunked\r\n\r\nffffffffffff\r\n{")
    assert got.split(b" ")[1] in (b"400", b"408", b"413") and closed < WAIT_S, got[:100]
    got, closed = exchange(server, head + b"Content-Length: 20\r\n\r\n", pace=0.06, slow=b'{"signals": {}}     ')
    assert got.startswith(b"HTTP/1.1 408") and closed < WAIT_S, got[:100]
    got, closed = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200") and closed < WAIT_S  # idle keep-alive closed at keep_alive_s


# ------------------------------------------------------------------------------------------------ property

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

HOSTILE_TEXT = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=12),  # surrogates, controls, anything
    st.sampled_from(["", " ", "i1", "u", "\ud800", "\u200d", "a" * 300, "click", "dwell", "data:x;base64,"]),
    st.just(b64(png_bytes())), st.just(b64(wav_bytes(0.1))), st.just(b64(wav_header(999_983))),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), HOSTILE_TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(HOSTILE_TEXT, inner, max_size=3)), max_leaves=8)


def model_doc(model: type) -> st.SearchStrategy:
    """Documents with the model's own keys (some dropped, some extra), each value valid-ish or hostile."""
    values = {}
    for name, field in model.model_fields.items():
        nested = [a for a in typing.get_args(field.annotation) if isinstance(a, type) and issubclass(a, api_models.BaseModel)]
        options = [JSON]
        if nested:
            options.append(model_doc(nested[0]))
        if name == "events":
            options.append(st.lists(model_doc(api_models.FeedbackEvent), min_size=1, max_size=3))
        if name == "tags":
            options.append(st.lists(model_doc(api_models.TagIn), max_size=2))
        values[name] = st.one_of(*options)
    return st.fixed_dictionaries({}, optional=values).flatmap(
        lambda doc: st.dictionaries(HOSTILE_TEXT, JSON, max_size=1).map(lambda extra: {**doc, **extra}))


@hypothesis.settings(max_examples=120, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(route=st.sampled_from(sorted(MODELS)), data=st.data())
def test_no_request_document_gets_a_5xx(client, route, data):
    doc = data.draw(model_doc(MODELS[route]))
    body = json.dumps(doc).encode()  # lone surrogates travel as \\uXXXX escapes, as an attacker sends them
    r = client.post(route, content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code < 500, (route, doc, r.text)


def test_path_ids_pass_the_same_check(client):
    problem(client.get("/v1/items/i1%E2%80%8D"), 422)  # a zero-width joiner after a real id
    assert client.get("/v1/items/i1").status_code == 200


def test_models_may_name_the_artifacts_file(tmp_path):
    """``aigcrec serve --models DIR/artifacts.json``, as --help and docs/service.md say."""
    from aigcrec.service.assemble import ServicePaths

    (tmp_path / "m").mkdir()
    manifest = tmp_path / "m" / "artifacts.json"
    manifest.write_text(json.dumps({"world_dir": "w", "feature_store": "f", "ranker_dir": "r"}))
    by_file = ServicePaths.from_dirs(tmp_path / "world", manifest)
    assert by_file == ServicePaths.from_dirs(tmp_path / "world", tmp_path / "m")
    assert by_file.ranker_dir == tmp_path / "m" / "r" and by_file.catalog_dir == tmp_path / "world"
