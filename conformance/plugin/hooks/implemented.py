"""Hooks: Implemented, consistent with the answers and stable; the lifecycle sequence."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from pluginconf.host.client import health_problem
from pluginconf.protocol.hooks import HOOKS as ALL_HOOKS
from pluginconf.runner import Profile, case, expect
from pluginconf.runner.plugin.http import ServeHTTPCall
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import call_hook

if TYPE_CHECKING:
    from pluginconf.v1.hooks_pb2_grpc import HooksAsyncStub  # in the type stubs only
from ._helpers import PROBE_REQUESTS


async def _serve_http_answers(hooks: HooksAsyncStub) -> tuple[bool, str]:
    """Whether ServeHTTP is served (anything but UNIMPLEMENTED), and how it ended."""
    call = ServeHTTPCall(hooks, timeout_s=30)
    try:
        try:
            await call.send_init("GET", "/")
            await call.send_end()
            await call.half_close()
        except grpc.aio.AioRpcError:
            pass  # the reader sees the status
        response = await call.finish(30)
    finally:
        await call.close()
    return response.code != grpc.StatusCode.UNIMPLEMENTED, response.describe()


@case(
    "plugin/hooks/implemented-consistent",
    requirements=["HK-2", "HK-3", "HK-4"],
    profile=Profile.HOOKS,
)
async def implemented_consistent(t: PluginTarget) -> None:
    """
    Purpose: The host may trust Implemented: it calls exactly the hooks listed there.
    Procedure: On a new plugin process, call Implemented, then every Hooks method once with
      an ordinary request (OnDeactivate last, ServeHTTP as GET /).
    Asserts: Implemented answers (HK-2); the hooks listed are exactly those that do not fail
      with UNIMPLEMENTED (HK-4), so that every other hook answers UNIMPLEMENTED (HK-3).
    """
    fresh = await t.launch()
    implemented = await call_hook(fresh.hooks, "Implemented", hooks_pb2.ImplementedRequest())
    expect(implemented.ok, implemented.describe(), requirement="HK-2")
    assert isinstance(implemented.response, hooks_pb2.ImplementedResponse)
    listed = set(implemented.response.hooks)
    wrong = []
    order = [h for h in ALL_HOOKS if h != "OnDeactivate"] + ["OnDeactivate"]
    for hook in order:
        t.step(f"calling {hook}")
        if hook == "ServeHTTP":
            answered, how = await _serve_http_answers(fresh.hooks)
        else:
            outcome = await call_hook(fresh.hooks, hook, PROBE_REQUESTS[hook])
            answered = outcome.code != grpc.StatusCode.UNIMPLEMENTED
            how = outcome.describe()
        if answered != (hook in listed):
            state = "listed" if hook in listed else "not listed"
            wrong.append(f"{hook} is {state} but answered: {how}")
    expect(
        not wrong,
        f"Implemented lists {sorted(listed)}, but:\n" + "\n".join(wrong),
        requirement=["HK-3", "HK-4"],
    )


@case("plugin/hooks/implemented-stable", requirements=["HK-2"], profile=Profile.HOOKS)
async def implemented_stable(t: PluginTarget) -> None:
    """
    Purpose: Implemented is a fact about the process, stated plainly.
    Procedure: Call Implemented three more times on the shared process.
    Asserts: Every answer equals the first; it names only Hooks methods, each once, and not
      Implemented itself.
    """
    shared = await t.shared()
    first = list(shared.implemented)
    for i in range(3):
        again = list(
            (await shared.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)).hooks
        )
        expect(again == first, f"Implemented answered {again} on call {i + 2}, {first} first")
    problems = []
    duplicates = sorted({h for h in first if first.count(h) > 1})
    if duplicates:
        problems.append(f"listed twice: {duplicates}")
    unknown = sorted(set(first) - set(ALL_HOOKS))
    if unknown:
        problems.append(f"not Hooks methods: {unknown}")
    expect(not problems, f"Implemented answers {first}: " + "; ".join(problems))


@case("plugin/hooks/lifecycle-sequence", requirements=["LC-10"], profile=Profile.HOOKS)
async def lifecycle_sequence(t: PluginTarget) -> None:
    """
    Purpose: A plugin goes through its whole life the way hosts drive it.
    Procedure: On a new process: Implemented, OnConfigurationChange with a configuration,
      OnActivate, MessageHasBeenPosted, OnDeactivate (each when listed), a health check,
      then Shutdown.
    Asserts: Every hook answers with status OK; after OnDeactivate the plugin still answers
      health checks with SERVING (how it then stops is the controller cases' matter).
    """
    fresh = await t.launch()
    listed = set((await fresh.hooks.Implemented(hooks_pb2.ImplementedRequest(), timeout=10)).hooks)
    for hook in ("OnConfigurationChange", "OnActivate", "MessageHasBeenPosted", "OnDeactivate"):
        if hook not in listed:
            continue
        t.step(f"calling {hook}")
        outcome = await call_hook(fresh.hooks, hook, PROBE_REQUESTS[hook])
        expect(outcome.ok, f"in the lifecycle sequence, {outcome.describe()}")
    t.step("checking health after OnDeactivate")
    problem = await health_problem(fresh.health, 10.0)
    expect(problem is None, f"after OnDeactivate: {problem}\n{fresh.evidence()}")
