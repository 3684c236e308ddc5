"""GRPCStdio, host side: when the host opens the stream, and that a plugin without it, or
whose stream ends, is not failing (IO-7, IO-8).

The host's logging of each chunk (IO-7) is not observable through the adapter: HostControl
carries no log, and what an adapter writes to stderr is free-form. These cases check what
the fakes see: the StreamStdio call, when it comes, and how often.
"""

from __future__ import annotations

from pluginconf.fake.scenario.spec import StdioMode
from pluginconf.runner import Level, Profile, case, case_each, check, expect, skip
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer

STREAM_STDIO = "/plugin.GRPCStdio/StreamStdio"
# How long the suite looks for a host to act on the end of a stdio stream (a bound on
# something that must not happen, not a SPEC time).
SETTLE_S = 0.5
# How long after activation the suite waits for a StreamStdio call it has not seen yet (a
# deadlock guard: hosts open the stream before they activate the plugin).
STREAM_GRACE_S = 5.0


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
      service) or ends at once; wait until the plugin is active and the host has called it
      (skipped when the host never calls it); fire a command; watch the plugin for half a
      second more.
    Asserts: The plugin is active, answers the command, and stays active with its one
      process: no `crashed` transition.
    """
    mode, what = STDIO_ENDINGS[ending]
    plugin = await t.load({"stdio": mode}, wait_active=False)
    await plugin.wait_active()
    # Hosts open the stream before activation (go-plugin 1.2 and later as they dial, a
    # pluginconf host after HL-6). A host that never does (go-plugin before 1.2) cannot show
    # how it treats a failing one: its missing stream is IO-7's, judged by
    # host/stdio/stream-once-after-health (one cause, one case).
    opened = await t.observer.wait_for(
        lambda e: (
            e.label == plugin.plugin_id and e.event == "rpc" and e.get("method") == STREAM_STDIO
        ),
        STREAM_GRACE_S,
    )
    if opened is None:
        skip(
            f"the host never called StreamStdio on an active plugin ({STREAM_GRACE_S:g} s "
            "after activation), so how it treats a failing one cannot be seen (go-plugin "
            "before 1.2.0 has no GRPCStdio client); IO-7 is judged by "
            "host/stdio/stream-once-after-health"
        )
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
