"""The circuit breaker with states interleaved (SV-11): a success between failures resets
the count of consecutive failures."""

from __future__ import annotations

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_error
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_error, make_post

HOOK_DEADLINE_S = 0.3


@case("host/crash/circuit-success-resets", requirements=["SV-11"], profile=Profile.HOOKS)
async def circuit_success_resets(t: HostTarget) -> None:
    """
    Purpose: A successful call between failures resets the count of consecutive failures.
    Procedure: Load a fake whose ExecuteCommand never answers (hook deadline 300 ms, breaker
      threshold 3, cooldown 30 s); fire two commands (both time out), filter a post (the fake
      keeps it: a success), then fire three more commands.
    Asserts: The filter succeeds; the next two commands fail as timeouts, not circuit_open,
      and reach the fake (two failures since the success are under the threshold); only the
      third after the success may find the circuit open.
    """
    t.require(Capability.CIRCUIT_BREAKER)
    p = await t.load(
        {"hang": {"hook": "ExecuteCommand"}},
        hook_timeout_s=HOOK_DEADLINE_S,
        breaker_threshold=3,
        breaker_cooldown_s=30,
    )
    for n in (1, 2):
        error = command_error(await p.command(f"/fail-{n}", timeout_s=10), p)
        expect(error.kind == "timeout", f"command {n}: {describe_error(error)}; expected timeout")
    outcome = await t.filter_post(make_post("between failures"))
    expect(
        not outcome.rejected and all(not s.HasField("error") for s in outcome.steps),
        f"the filter call between the failures did not succeed: {outcome}\n{p.evidence()}",
    )
    for n in (3, 4):
        error = command_error(await p.command(f"/fail-{n}", timeout_s=10), p)
        expect(
            error.kind == "timeout",
            f"command {n} (the {n - 2}. failure since a successful MessageWillBePosted) "
            f"failed with {describe_error(error)}; a success resets the count, so the circuit "
            f"stays closed until 3 failures in a row (SV-11)\n{p.evidence()}",
        )
    calls = len(p.calls("ExecuteCommand"))
    expect(calls == 4, f"the fake received {calls} commands, 4 were sent\n{p.evidence()}")
