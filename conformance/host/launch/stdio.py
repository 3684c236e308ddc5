"""GRPCStdio, host side: when the host opens the stream, and that a plugin without it, or
whose stream ends, is not failing (IO-7, IO-8).

The host's logging of each chunk (IO-7) is not observable through the adapter: HostControl
carries no log, and what an adapter writes to stderr is free-form. These cases check what
the fakes see: the StreamStdio call, when it comes, and how often.
"""

from __future__ import annotations

from pluginconf.fake.scenario.spec import StdioMode
from pluginconf.runner import Level, Profile, case, case_each, check, expect
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer

STREAM_STDIO = "/plugin.GRPCStdio/StreamStdio"
# How long the suite looks for a host to act on the end of a stdio stream (a bound on
# something that must not happen, not a SPEC time).
SETTLE_S = 0.5


def stdio_calls(plugin: FakePlugin, pid: int) -> list[Observed]:
    return [e for e in plugin.events("rpc", pid) if e.get("method") == STREAM_STDIO]


@case(
    "host/stdio/stream-once-after-health",
    requirements=["IO-7"],
    profile=Profile.HOOKS,
    level=Level.SHOULD,
)
async def stream_once_after_health(t: HostTarget) -> None:
    """
    Purpose: The host reads what a plugin writes through GRPCStdio with one stream per
      process, opened once the process is known to serve.
    Procedure: Load a fake and wait until it is active; fire a command; disable and enable it
      so that a second process starts; wait until it is active and fire a command.
    Asserts: Each process got StreamStdio exactly once, after it had answered a health check
      with SERVING. (Whether the host logs each chunk with the plugin id and channel cannot
      be observed through the adapter.)
    """
    plugin = await t.load()
    command_answer(await plugin.command("/first"), plugin)
    await plugin.disable()
    await plugin.enable()
    await plugin.wait_active()
    command_answer(await plugin.command("/second"), plugin)
    problems = []
    for pid in plugin.pids():
        calls = stdio_calls(plugin, pid)
        if len(calls) != 1:
            problems.append(f"process {pid} got StreamStdio {len(calls)} times, expected once")
        if not calls:
            continue
        serving = [
            e
            for e in plugin.events("health_answer", pid)
            if e.get("answer") == "SERVING" and e.seq < calls[0].seq
        ]
        if not serving:
            problems.append(
                f"process {pid} got StreamStdio before it had answered a health check with SERVING"
            )
    check(
        not problems,
        "IO-7: StreamStdio once per process, right after the health check:\n  "
        + "\n  ".join(problems)
        + f"\n{plugin.evidence()}",
        requirement="IO-7",
    )


STDIO_ENDINGS: dict[str, tuple[StdioMode, str]] = {
    "unimplemented": ("absent", "without GRPCStdio (UNIMPLEMENTED, as before go-plugin 1.2)"),
    "stream-ends": ("ends", "whose StreamStdio stream ends at once"),
}


@case_each(
    "host/stdio/not-a-failure/{}",
    tuple(STDIO_ENDINGS),
    requirements=["IO-8"],
    profile=Profile.HOOKS,
)
async def not_a_failure(t: HostTarget, ending: str) -> None:
    """
    Purpose: A plugin without GRPCStdio, or whose stream ends ({value}), is a working plugin.
    Procedure: Load a fake whose StreamStdio answers UNIMPLEMENTED (a plugin without the
      service) or ends at once; wait until the host has called it and the plugin is active;
      fire a command; watch the plugin for half a second more.
    Asserts: The plugin is active, answers the command, and stays active with its one
      process: no `crashed` transition.
    """
    mode, what = STDIO_ENDINGS[ending]
    plugin = await t.load({"stdio": mode}, wait_active=False)
    await plugin.wait_event(
        "rpc",
        where=lambda e: e.get("method") == STREAM_STDIO,
        why="the host should open StreamStdio once the plugin serves (IO-7)",
        timeout_s=15.0,
    )
    await plugin.wait_active()
    command_answer(await plugin.command("/after-stdio"), plugin)
    moved = await plugin.watch_until(
        lambda s: s.state != "active" or len(s.transitions) > 2, SETTLE_S
    )
    status = moved or await plugin.status()
    expect(
        moved is None and len(plugin.pids()) == 1,
        f"a plugin {what} was treated as failing: it is {status.state} with "
        f"{len(plugin.pids())} process(es) (IO-8)\n{describe_status(status)}\n"
        f"{plugin.evidence()}",
        requirement="IO-8",
    )
