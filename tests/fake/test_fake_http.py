"""The fake plugin's ServeHTTP routes and what it records of the request frames."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
from fake_support import (
    body_of,
    event,
    fake,
    header_values,
    http,
    kinds,
    open_http,
    read_all,
    recorded,
    scenario,
)

from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2

# -- HTTP routes --------------------------------------------------------------------------


async def test_http_headers_statuses_and_bytes_length(launch_plugin, tmp_path):
    plugin = await launch_plugin(fake(scenario(tmp_path, {})))
    frames, error = await http(plugin, "/headers")
    assert error is None and frames[0].init.status == 200
    headers = header_values(frames[0])
    assert (headers["x-multi"], headers["set-cookie"]) == (["a", "b", "c"], ["a=1", "b=2"])
    assert body_of(frames) == b"headers\n"
    assert "connection" not in headers and "x-hop-secret" not in headers
    frames, _ = await http(plugin, "/headers", "hop=1")
    hop = header_values(frames[0])
    assert (hop["connection"], hop["x-hop-secret"]) == (["x-hop-secret"], ["1"])
    assert (hop["keep-alive"], hop["proxy-connection"]) == (["timeout=99"], ["keep-alive"])
    for code in (200, 201, 404, 418, 503, 599):
        frames, _ = await http(plugin, f"/status/{code}")
        body = f"status {code}\n".encode()
        assert (frames[0].init.status, body_of(frames)) == (code, body)
        assert header_values(frames[0])["content-length"] == [str(len(body))]
    for code in (204, 304):
        frames, _ = await http(plugin, f"/status/{code}")
        assert (frames[0].init.status, body_of(frames)) == (code, b"")
        assert "content-length" not in header_values(frames[0])
    for bad in ("99", "600", "abc"):
        frames, _ = await http(plugin, f"/status/{bad}")
        assert frames[0].init.status == 400
        assert b"expected /status/CODE with CODE from 200 to 599" in body_of(frames)
    frames, _ = await http(plugin, "/bytes", "n=1000")
    assert header_values(frames[0])["content-length"] == ["1000"]


async def test_http_drip_flushes_each_piece(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/drip", "n=3&ms=300")
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    frames = await read_all(call)
    assert kinds([f for f, _ in frames]) == ["init"] + ["body", "flush"] * 3 + ["end"]
    bodies = [(f.body, t) for f, t in frames if f.WhichOneof("frame") == "body"]
    assert [b for b, _ in bodies] == [b"piece 1\n", b"piece 2\n", b"piece 3\n"]
    call_id = record.events("call")[-1]["call"]
    sent = record.events("http_piece_sent")
    assert [(e["call"], e["index"]) for e in sent] == [(call_id, 1), (call_id, 2), (call_id, 3)]
    for (_, arrived), next_sent in zip(bodies, sent[1:], strict=False):
        assert arrived < next_sent["monotonic"]  # each piece came before the next was sent
    assert sent[2]["monotonic"] - sent[1]["monotonic"] >= 0.3 - 0.01


async def test_http_hold_records_the_client_leaving(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/hold")
    frames = [await call.read() for _ in range(3)]
    assert kinds(frames) == ["init", "body", "flush"] and frames[1].body == b"holding\n"
    call_id = record.events("call")[-1]["call"]
    reader = asyncio.ensure_future(call.read())
    done, _ = await asyncio.wait({reader}, timeout=0.3)
    assert not done, "/hold answered more"
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    gone = await record.wait_for(event("http_disconnect", call=call_id))
    assert gone["path"] == "/hold"
    request_end = await record.wait_for(event("http_request_end", call=call_id))
    assert request_end["complete"] is False  # the request never ended: the client left


async def test_http_sink_reports_progress_and_answers_at_the_end(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/sink")
    reader = asyncio.ensure_future(call.read())
    body = generate_bytes(3 * 65536 + 5, seed=11)
    sent = 0
    for start in range(0, len(body), 65536):
        piece = body[start : start + 65536]
        await call.write(hooks_pb2.HTTPRequestFrame(body=piece))
        sent += len(piece)
        progress = await record.wait_for(event("http_body_progress", bytes=sent))
        assert progress["call"] == record.events("call")[-1]["call"]
    done, _ = await asyncio.wait({reader}, timeout=0.3)
    assert not done, "/sink answered before the end of the request"
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    frames = [await reader] + [f for f, _ in await read_all(call)]
    assert frames[0].init.status == 200 and kinds(frames)[-1] == "end"
    assert body_of(frames) == f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
    steps = [e["bytes"] for e in record.events("http_body_progress")]
    assert steps == [65536, 131072, 196608, len(body)]


async def test_request_frames_and_half_close_are_recorded(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/sink")
    for piece in (b"x" * 10, b"", b"y" * 70000):
        await call.write(hooks_pb2.HTTPRequestFrame(body=piece))
    await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
    await call.done_writing()
    await read_all(call)
    end = await record.wait_for(event("http_request_end"))
    assert end["frames"] == {"init": 1, "body": 3, "end": 1, "other": 0}
    assert (end["body_frame_max"], end["empty_body_frames"]) == (70000, 1)
    closed = await record.wait_for(event("http_request_closed"))
    assert (closed["after_end"], closed["half_closed"]) == ([], True)


async def test_early_answers_and_ends_the_call_unread(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    call = await open_http(plugin, "/early")
    frames = [f for f, _ in await read_all(call)]
    assert frames[0].init.status == 200 and kinds(frames)[-1] == "end"
    assert body_of(frames) == b"early\n"
    assert await call.code() == grpc.StatusCode.OK
    end = await record.wait_for(event("http_request_end"))
    assert end["complete"] is False and end["body_bytes"] == 0


async def test_a_request_frame_that_does_not_parse_is_recorded_with_why(launch_plugin, tmp_path):
    argv, record = recorded(tmp_path, {})
    plugin = await launch_plugin(argv)
    send_raw = plugin.channel.stream_stream(
        "/pluginconf.v1.Hooks/ServeHTTP",
        request_serializer=lambda raw: raw,
        response_deserializer=hooks_pb2.HTTPResponseFrame.FromString,
    )
    call = send_raw(timeout=30)
    # HTTPRequestFrame{init: {method: b"caf\xe9"}}: a string field that is not UTF-8.
    await call.write(b"\x0a\x06\x0a\x04caf\xe9")
    await call.done_writing()
    assert await call.code() != grpc.StatusCode.OK
    got = await record.wait_for(event("call", hook="ServeHTTP"))
    assert got["request"] is None
    assert got["request_error"].startswith("DecodeError: ") and "UTF-8" in got["request_error"]
