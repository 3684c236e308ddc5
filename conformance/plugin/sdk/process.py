"""The conformance plugin's process around its hooks: the stdio it captures, its stop grace."""

from __future__ import annotations

import time
import uuid

from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.plugin.http import ServeHTTPCall, exchange
from pluginconf.runner.plugin.stdio import STDERR, STDOUT, StdioCollector
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import EXIT_GUARD_S, NON_BMP, judge_bound
from ._helpers import command_text

# A deadlock guard for output to come through GRPCStdio (IO-4, IO-5 set no bound).
_STDIO_GUARD_S = 10.0


@case("plugin/sdk/stdio/capture", requirements=["IO-2", "IO-4", "RB-10"], profile=Profile.SDK)
async def stdio_capture(t: PluginTarget) -> None:
    """
    Purpose: What the plugin prints reaches the host through GRPCStdio, on the right channel.
    Procedure: On the shared process (whose StreamStdio the suite opened at start), run
      "/print stdout TEXT" and "/print stderr TEXT" with distinct non-BMP texts.
    Asserts: Each text and its newline arrive on its channel (10 s at most), and no StdioData
      has channel INVALID or empty data (IO-4); a text the plugin wrote to its descriptor
      that reached the host's pipe instead was not captured (IO-2). The conformance plugin
      writes it to the descriptor itself, beneath the language's stream objects.
    """
    shared = await t.shared()
    run = uuid.uuid4().hex[:6]
    for channel, name in ((STDOUT, "stdout"), (STDERR, "stderr")):
        text = f"{name}-{run}-{NON_BMP}"
        await command_text(shared.hooks, f"/print {name} {text}")
        arrived = leaked = False
        deadline = time.monotonic() + _STDIO_GUARD_S
        while not (arrived or leaked) and time.monotonic() < deadline:
            # The host's pipes are read into lists without an event: checked between waits.
            arrived = await shared.stdio.wait_for(channel, f"{text}\n".encode(), 0.1)
            pipes = (*shared.launched.stdout_after_handshake, *shared.launched.stderr_tail)
            leaked = not arrived and any(text in line for line in pipes)
        if arrived:
            continue
        if leaked:
            fail_text = f"the plugin's {name} pipe, not StreamStdio, received {text!r}: uncaptured"
        else:
            fail_text = f"{text!r} did not arrive on {name} within {_STDIO_GUARD_S:g} s"
        check(
            False,
            f"{fail_text} (StreamStdio: {shared.stdio.error or 'open'})",
            requirement="IO-2" if leaked else "IO-4",
        )
    check(not shared.stdio.violations, "; ".join(shared.stdio.violations), requirement="IO-4")


@case("plugin/sdk/stdio/single-delivery", requirements=["IO-5", "RB-10"], profile=Profile.SDK)
async def stdio_single_delivery(t: PluginTarget) -> None:
    """
    Purpose: Captured output is delivered once, never twice.
    Procedure: On a new process, print a line, open StreamStdio and receive it, close that
      stream, then open a second StreamStdio.
    Asserts: The second stream fails with FAILED_PRECONDITION or does not deliver the line
      again.
    """
    fresh = await t.launch()
    text = f"once-{uuid.uuid4().hex[:6]}\n".encode()
    await command_text(fresh.hooks, f"/print stdout {text.decode().strip()}")
    first = StdioCollector(fresh.connection)
    try:
        expect(
            await first.wait_for(STDOUT, text, _STDIO_GUARD_S),
            "the line did not arrive",
            requirement="IO-5",
        )
    finally:
        await first.close()
    second = StdioCollector(fresh.connection)
    try:
        again = await second.wait_for(STDOUT, text, 0.5)
    finally:
        await second.close()
    expect(not again, "a second StreamStdio delivered the line again", requirement="IO-5")


# CT-2: once its calls are done, the plugin exits "as soon as" it can; the suite allows what
# CT-3 allows after a Shutdown with nothing in progress.
_AFTER_LAST_CALL_S = 1.0


@case("plugin/sdk/controller/grace", requirements=["CT-2", "RB-6"], profile=Profile.SDK)
async def shutdown_grace(t: PluginTarget) -> None:
    """
    Purpose: Shutdown lets a call in progress finish, and then the plugin exits.
    Procedure: On a new process start GET /flush?n=2&ms=600 and, once its first chunk has
      arrived, call Shutdown; try a new call; wait for the exchange to complete; time the
      exit from its end. A time over the bound is set beside a minimal gRPC process's stop
      timed just then, and the whole sequence run again on a new process before it counts.
    Asserts: The first chunk comes (RB-6); the new call fails; the exchange completes with
      both chunks and end; the process exits within 1 s after that (CT-2).
    """
    first_run: list[str] = []

    async def graceful_once() -> float | None:
        problems: list[str] = []
        fresh = await t.launch()
        call = ServeHTTPCall(fresh.hooks)
        try:
            await call.send_init("GET", "/flush", "n=2&ms=600")
            await call.send_end()
            await call.half_close()
            expect(
                await call.wait_for("body", 10),
                f"no first chunk: {call.response.describe()}",
                requirement="RB-6",
            )
            await fresh.request_shutdown()
            late = await exchange(fresh.hooks, "GET", "/status/200", timeout_s=10)
            if late.status is not None:
                problems.append(f"a call made after Shutdown was served: {late.describe()}")
            response = await call.finish(10)
        finally:
            await call.close()
        ended = time.monotonic()
        if not (bytes(response.body) == b"chunk 0\nchunk 1\n" and response.ended):
            problems.append(
                f"the call in progress at Shutdown did not complete: {response.describe()}, "
                f"body {bytes(response.body)!r}"
            )
        exited = await fresh.wait_exit(EXIT_GUARD_S)
        if not first_run:
            first_run.extend(problems or [""])
        return time.monotonic() - ended if exited else None

    verdict = await judge_bound(
        _AFTER_LAST_CALL_S, graceful_once, Yardstick.STOP, "the exit after the last call ended"
    )
    for problem in first_run:
        check(not problem, problem, requirement="CT-2")
    check(verdict.met, verdict.evidence(), requirement="CT-2")
