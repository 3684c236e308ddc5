"""Stdio while nobody reads it: writing never blocks, and the newest output is kept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

import grpc
from google.protobuf import empty_pb2

from pluginconf.goplugin import grpc_stdio_pb2_grpc
from pluginconf.host.client import health_problem
from pluginconf.runner import Level, Profile, case, check, expect
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.stdio import STDERR, STDOUT, StdioCollector
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.units import MIB
from pluginconf.v1 import hooks_pb2

from .._helpers import show

# IO-3's figure; CI runs the heavy cases at a reduced size (PLUGINCONF_HEAVY_BYTES).
_IO3_BYTES = min(100 * MIB, int(os.environ.get("PLUGINCONF_HEAVY_BYTES", str(100 * MIB))))
# One /print's text: just under the 4 MiB message limit, and no multiple of 64 KiB.
_PIECE = 4 * MIB - 65536 - 4099
# Deadlock guards: how long one /print or one probe may take at all (IO-3 sets no bound).
_CALL_GUARD_S = 15.0
_PROBE_EVERY_S = 0.2
# IO-6: at least this much of each channel is kept while no StreamStdio is open.
_KEPT = 64 * 1024
_STDIO_GUARD_S = 10.0


async def _print(fresh: FreshPlugin, channel: str, text: str) -> str | None:
    """None when ``/print channel text`` answered "printed" within the guard, else how not."""
    request = hooks_pb2.ExecuteCommandRequest(command=f"/print {channel} {text}")
    try:
        answer = await fresh.hooks.ExecuteCommand(request, timeout=_CALL_GUARD_S)
    except grpc.aio.AioRpcError as exc:
        return f"/print {channel} ({len(text)} bytes) failed: {exc.code().name}: {exc.details()}"
    if answer.HasField("error") or answer.text != "printed":
        return f"/print {channel} answered {show(str(answer))}"
    return None


async def _write_and_probe(fresh: FreshPlugin, total: int, where: str) -> list[str]:
    """Print ``total`` bytes to each channel while health checks and /echo probe the plugin."""
    problems: list[str] = []
    writing = True

    async def probe() -> None:
        while writing:
            problem = await health_problem(fresh.health, _CALL_GUARD_S)
            if problem is None:
                answer = await fresh.hooks.ExecuteCommand(
                    hooks_pb2.ExecuteCommandRequest(command="/echo probe"), timeout=_CALL_GUARD_S
                )
                problem = None if answer.text == "probe" else f"/echo answered {answer}"
            if problem is not None:
                problems.append(f"{where}: while it wrote, a call went unanswered: {problem}")
                return
            await asyncio.sleep(_PROBE_EVERY_S)

    prober = asyncio.ensure_future(probe())
    try:
        written = 0
        while written < total and not problems:
            size = min(_PIECE, total - written)
            for channel in ("stdout", "stderr"):
                problem = await _print(fresh, channel, "x" * size)
                if problem is not None:
                    problems.append(
                        f"{where}: after {written} bytes to each channel, {problem}: writing "
                        "blocked the plugin"
                    )
                    break
            written += size
    finally:
        writing = False
        with contextlib.suppress(grpc.aio.AioRpcError):
            await asyncio.wait_for(prober, _CALL_GUARD_S * 2)
    return problems


@case(
    "plugin/sdk/stdio/unread-output-does-not-block",
    requirements=["IO-3", "RB-10"],
    profile=Profile.SDK,
    heavy=True,
    timeout_s=180.0,
)
async def unread_output(t: PluginTarget) -> None:
    """
    Purpose: A plugin's own logging never hangs it, whether or not the host reads it.
    Procedure: On a new process with no StreamStdio open, print 100 MiB (less under
      PLUGINCONF_HEAVY_BYTES) to stdout and to stderr with "/print" commands of just under
      4 MiB each (no multiple of 64 KiB), while a health check and "/echo probe" run every
      200 ms; then the same, 16 MiB each, on a new process whose StreamStdio is open but never
      read.
    Asserts: Every /print answers "printed" and every probe is answered, each within a 15 s
      deadlock guard.
    """
    fresh = await t.launch()
    problems = await _write_and_probe(fresh, _IO3_BYTES, "with no StreamStdio open")
    for problem in problems:
        check(False, problem, requirement="IO-3")
    await fresh.close()
    slow = await t.launch()
    # Opened and never read: the host that reads slowly, at its slowest.
    unread = grpc_stdio_pb2_grpc.GRPCStdioStub(slow.connection).StreamStdio(empty_pb2.Empty())
    try:
        problems = await _write_and_probe(
            slow, min(_IO3_BYTES, 16 * MIB), "with a StreamStdio open and never read"
        )
    finally:
        unread.cancel()
    for problem in problems:
        check(False, problem, requirement="IO-3")


def _numbered(tag: str, total: int) -> str:
    """Text of exactly ``total`` bytes of numbered lines, so that any byte's place is known."""
    lines = []
    size = 0
    i = 0
    while size < total:
        line = f"{tag}-{i:08d}\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)[:total]


@case(
    "plugin/sdk/stdio/kept-before-subscriber",
    requirements=["IO-6"],
    profile=Profile.SDK,
    level=Level.SHOULD,
)
async def kept_before_subscriber(t: PluginTarget) -> None:
    """
    Purpose: Output written before the host subscribes is kept, the newest first, for each
      channel, however much the other channel wrote meanwhile.
    Procedure: On a new process with no StreamStdio open, print 100003 bytes of numbered lines
      to stderr, then 3 MiB + 12345 bytes to stdout in three "/print" commands; then open
      StreamStdio, print an end mark on each channel, and read up to the marks.
    Asserts: For each channel, what arrived before its mark is the end of what was written
      (the oldest dropped first, nothing reordered or repeated) and holds at least its last
      64 KiB, or all of it when less was written.
    """
    fresh = await t.launch()
    run = uuid.uuid4().hex[:6]
    written = {STDERR: _numbered(f"e{run}", 100003), STDOUT: _numbered(f"o{run}", 3 * MIB + 12345)}
    names = {STDOUT: "stdout", STDERR: "stderr"}
    for channel in (STDERR, STDOUT):
        # /print adds a newline to each text; the lines end in one already.
        text = written[channel]
        pieces = [text[i : i + MIB + 1] for i in range(0, len(text), MIB + 1)]
        expected = ""
        for piece in pieces:
            problem = await _print(fresh, names[channel], piece.removesuffix("\n"))
            expect(problem is None, str(problem), requirement="IO-6")
            expected += piece.removesuffix("\n") + "\n"
        written[channel] = expected
    stdio = StdioCollector(fresh.connection)
    try:
        marks = {c: f"mark-{run}-{names[c]}" for c in (STDOUT, STDERR)}
        for channel in (STDOUT, STDERR):
            problem = await _print(fresh, names[channel], marks[channel])
            # /print is RB-10's, which plugin/sdk/commands/* judge: here it is only a tool.
            expect(problem is None, f"printing the end mark: {problem}")
            got = await stdio.wait_for(channel, marks[channel].encode(), _STDIO_GUARD_S)
            expect(
                got,
                f"the mark on {names[channel]} did not arrive within {_STDIO_GUARD_S:g} s "
                f"(StreamStdio: {stdio.error or 'open'})",
                requirement="IO-6",
            )
        for channel in (STDOUT, STDERR):
            data = bytes(stdio.data[channel])
            kept = data[: data.index(marks[channel].encode())].decode("utf-8", "replace")
            full = written[channel]
            need = min(_KEPT, len(full))
            check(
                full.endswith(kept),
                f"{names[channel]}: the {len(kept)} bytes kept before the subscriber are not the "
                f"end of the {len(full)} written (the newest must be kept, in order): they "
                f"begin {show(kept[:60])} and end {show(kept[-60:])}",
                requirement="IO-6",
            )
            check(
                len(kept) >= need,
                f"{names[channel]}: {len(kept)} of the {len(full)} bytes written before the "
                f"subscriber were kept; at least the last {need} must be",
                requirement="IO-6",
            )
    finally:
        await stdio.close()
