"""`pluginconf plugin`: until the conformance suite lands, a smoke run under a small host.

It launches the plugin, then checks the handshake, health, Implemented against what answers
UNIMPLEMENTED, a ServeHTTP round trip when implemented (byte-exact against the reference
plugin's /echo and /bytes when the target is the reference plugin), and graceful shutdown.
Exit status: 0 all passed, 1 a check failed, 2 usage error or the plugin could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf._grpc_compat import EOF
from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, launch
from pluginconf.protocol.constants import HEALTH_SERVICE_NAME, MagicCookie
from pluginconf.reference.generator import generate_bytes
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--magic-cookie",
        default="PLUGINCONF_MAGIC_COOKIE=pluginconf",
        metavar="KEY=VALUE",
        help="the cookie the host sets (default: %(default)s)",
    )
    parser.add_argument(
        "--protocol-versions",
        default="1",
        metavar="V[,V...]",
        help="app protocol versions the host offers (default: %(default)s)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the handshake (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="write a JSON report to FILE")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every check")


class CheckFailed(Exception):
    """A check found the plugin wrong; the message is the evidence."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class CheckResult:
    id: str
    outcome: str  # "passed", "failed" or "skipped"
    message: str = ""
    duration_s: float = 0.0


@dataclass
class Run:
    plugin: LaunchedPlugin
    reference: bool
    results: list[CheckResult] = field(default_factory=list)

    async def check(self, case_id: str, body: Callable[[], Awaitable[str | None]]) -> None:
        start = time.monotonic()
        try:
            skipped = await asyncio.wait_for(body(), 60)
            outcome, message = ("skipped", skipped) if skipped else ("passed", "")
        except CheckFailed as exc:
            outcome, message = "failed", str(exc)
        except grpc.aio.AioRpcError as exc:
            outcome, message = "failed", f"gRPC {exc.code().name}: {exc.details()}"
        except TimeoutError:
            outcome, message = "failed", "no answer within 60 s"
        self.results.append(CheckResult(case_id, outcome, message, time.monotonic() - start))


_EMPTY_REQUESTS: dict[str, object] = {
    "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(),
    "OnActivate": hooks_pb2.OnActivateRequest(plugin_id="demo"),
    "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(),
    "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(),
    "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(command="/echo pluginconf"),
}


async def _http(
    stub: hooks_pb2_grpc.HooksAsyncStub, method: str, path: str, query: str = "", body: bytes = b""
) -> tuple[int, bytes, str]:
    """One ServeHTTP exchange, full duplex: the request is written while the response is read."""
    call = stub.ServeHTTP(None, timeout=60)
    init = hooks_pb2.HTTPRequestInit(
        method=method,
        path=path,
        raw_query=query,
        content_length=len(body),
        remote_addr="127.0.0.1:1",
    )

    async def write_request() -> None:
        await call.write(hooks_pb2.HTTPRequestFrame(init=init))
        for i in range(0, len(body), 65536):
            await call.write(hooks_pb2.HTTPRequestFrame(body=body[i : i + 65536]))
        await call.write(hooks_pb2.HTTPRequestFrame(end=hooks_pb2.HTTPRequestEnd()))
        await call.done_writing()

    writer = asyncio.ensure_future(write_request())
    frames = []
    while (frame := await call.read()) is not EOF:
        assert isinstance(frame, hooks_pb2.HTTPResponseFrame)
        frames.append(frame)
    # A plugin may finish before the whole request was sent (SH-26): a failed write is fine
    # once the response is complete. (grpc.aio may then also fail reads, grpc/grpc#36066;
    # plugins avoid that by draining the request first, SH-25.)
    await asyncio.wait({writer})
    if not writer.cancelled():
        writer.exception()  # retrieved: not an error once the response is complete
    expect(
        bool(frames) and frames[0].WhichOneof("frame") == "init",
        f"ServeHTTP {method} {path}: first response frame must be init, got "
        f"{frames[0].WhichOneof('frame') if frames else 'none'}",
    )
    expect(frames[-1].WhichOneof("frame") == "end", f"ServeHTTP {path}: last frame is not end")
    data = b"".join(f.body for f in frames if f.WhichOneof("frame") == "body")
    return frames[0].init.status, data, frames[-1].end.error


def _first_difference(a: bytes, b: bytes) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


async def _checks(run: Run) -> None:
    plugin = run.plugin
    assert plugin.channel is not None
    assert plugin.handshake is not None
    health = health_pb2_grpc.HealthStub(plugin.channel)
    hooks = hooks_pb2_grpc.HooksStub(plugin.channel)

    async def handshake() -> None:
        if plugin.noise_lines:
            raise CheckFailed(
                f"{len(plugin.noise_lines)} line(s) on stdout before the handshake, "
                f"first: {plugin.noise_lines[0]!r}"
            )

    async def serving() -> None:
        r = await health.Check(
            health_pb2.HealthCheckRequest(service=HEALTH_SERVICE_NAME), timeout=5
        )
        expect(
            r.status == health_pb2.HealthCheckResponse.SERVING,
            f"health of {HEALTH_SERVICE_NAME!r} is "
            f"{health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)}, expected SERVING",
        )

    async def unknown_service() -> None:
        try:
            await health.Check(health_pb2.HealthCheckRequest(service="no-such-service"), timeout=5)
        except grpc.aio.AioRpcError as exc:
            expect(
                exc.code() == grpc.StatusCode.NOT_FOUND,
                (f"expected NOT_FOUND, got {exc.code().name}"),
            )
            return
        raise CheckFailed("health check of an unknown service succeeded; expected NOT_FOUND")

    implemented: list[str] = []

    async def implemented_consistent() -> None:
        implemented.extend(
            (await hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)).hooks
        )
        wrong = []
        for name, request in _EMPTY_REQUESTS.items():
            try:
                await getattr(hooks, name)(request, timeout=10)
                answered = True
            except grpc.aio.AioRpcError as exc:
                answered = exc.code() != grpc.StatusCode.UNIMPLEMENTED
            if answered != (name in implemented):
                wrong.append(
                    f"{name} ({'answers' if answered else 'UNIMPLEMENTED'}, "
                    f"{'listed' if name in implemented else 'not listed'})"
                )
        expect(not wrong, "Implemented disagrees with the hooks: " + "; ".join(wrong))

    async def serve_http() -> str | None:
        if "ServeHTTP" not in implemented:
            return "ServeHTTP not implemented"
        status, _, _ = await _http(hooks, "GET", "/")
        expect(100 <= status <= 599, f"status {status} is not an HTTP status")
        return None

    async def echo_exact() -> str | None:
        if not run.reference:
            return "reference behaviour: runs against the reference plugin only"
        body = generate_bytes(271828, seed=7)
        status, data, error = await _http(hooks, "POST", "/echo", body=body)
        expect(status == 200 and not error, f"status {status}, end error {error!r}")
        expect(
            data == body,
            (
                f"echo returned {len(data)} bytes, sent {len(body)}; first difference at "
                f"{_first_difference(data, body)}"
            ),
        )
        return None

    async def bytes_exact() -> str | None:
        if not run.reference:
            return "reference behaviour: runs against the reference plugin only"
        status, data, _ = await _http(hooks, "GET", "/bytes", "n=65537&seed=3&chunk=1000")
        expect(
            status == 200 and data == generate_bytes(65537, seed=3),
            ("bytes differ from the generator"),
        )
        return None

    await run.check("plugin/handshake/first-line", handshake)
    await run.check("plugin/health/serving", serving)
    await run.check("plugin/health/unknown-service", unknown_service)
    await run.check("plugin/hooks/implemented-consistent", implemented_consistent)
    await run.check("plugin/serve-http/init-first", serve_http)
    await run.check("plugin/sdk/echo-271828", echo_exact)
    await run.check("plugin/sdk/bytes-65537", bytes_exact)

    async def shutdown() -> None:
        report = await plugin.stop()
        expect(
            report.ended_by == "shutdown",
            (
                "plugin did not exit after GRPCController.Shutdown "
                f"(answer {report.shutdown_answer}); "
                f"it took {report.ended_by.upper()}"
            ),
        )
        expect(
            report.exit_status == 0,
            (f"exit status {report.exit_status} after Shutdown, expected 0"),
        )
        expect(
            report.duration_s < 1.0,
            (f"exit took {report.duration_s:.3f}s after Shutdown, bound 1 s"),
        )

    await run.check("plugin/controller/shutdown-exits", shutdown)


async def _run(args: argparse.Namespace) -> tuple[int, list[CheckResult]]:
    target = args.target or [sys.executable, "-m", "pluginconf", "reference-plugin"]
    versions = [int(v) for v in args.protocol_versions.split(",")]
    spec = LaunchSpec(
        argv=target,
        magic_cookie=MagicCookie.parse(args.magic_cookie),
        protocol_versions=versions,
        start_timeout_s=args.start_timeout,
    )
    try:
        plugin = await launch(spec)
    except LaunchError as exc:
        print(f"pluginconf: the plugin could not be started:\n{exc}", file=sys.stderr)
        return 2, []
    run = Run(plugin, reference=not args.target)
    try:
        await _checks(run)
    finally:
        await plugin.close()
    return (1 if any(r.outcome == "failed" for r in run.results) else 0), run.results


def run_demo(args: argparse.Namespace) -> int:
    try:
        MagicCookie.parse(args.magic_cookie)
        [int(v) for v in args.protocol_versions.split(",")]
    except ValueError as exc:
        print(f"pluginconf plugin: error: {exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    code, results = asyncio.run(_run(args))
    for r in results:
        if args.verbose or r.outcome == "failed":
            line = f"{r.outcome.upper():7} {r.id}"
            print(line + (f"\n        {r.message}" if r.message else ""))
    counts = {o: sum(r.outcome == o for r in results) for o in ("passed", "failed", "skipped")}
    if args.json:
        report = {
            "suite": "plugin",
            "target": args.target or ["pluginconf", "reference-plugin"],
            "profile": "smoke",
            "summary": {
                **counts,
                "xfailed": 0,
                "xpassed": 0,
                "errors": 0,
                "duration_s": round(time.monotonic() - start, 3),
            },
            "cases": [
                {
                    "id": r.id,
                    "requirement": [],
                    "level": "MUST",
                    "outcome": r.outcome,
                    "duration_s": round(r.duration_s, 4),
                    "message": r.message,
                }
                for r in results
            ],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
    if results:
        print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return code
