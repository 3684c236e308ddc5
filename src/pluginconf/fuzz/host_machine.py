"""The host target's properties, and ``host/lifecycle/state-machine`` itself.

The state machine drives a host through its adapter as an application and a hostile machine
would. Its steps load up to three fake plugins (well-behaved, with slow hooks, or with
flapping health; some with a process in their group that only a group kill ends), fire
ExecuteCommand, filter-chain and notification posts, send HTTP /echo bursts, kill, hang and
stall plugin processes (alone, or by a fault schedule under traffic, see faults.py), change
configurations, disable and enable plugins. Calls that outlive their deadline fail the step
at once, whatever the plugin's state.

After every step it waits, on WatchPlugin, until each plugin rests (active or failed, or
stopped), and checks what the host reports against what the fakes observed and what the
process table shows: the transitions follow SV-1's table; restarts follow the policy (SV-8,
SV-9); an active plugin has exactly the one live process the host names, activated as LC-1
says; every other process, its process group and its socket directory are gone (SV-16 to
SV-18); what the fakes received is what was sent (HK-14); changes to one plugin never
overlap (LC-3); a plugin left alone does not crash (SV-20), and answers exactly.

The machine is assembled here from one module per concern: host_bounds (timing),
host_strategies (what it draws), host_tracked (what it knows of each plugin), host_checks
(the SPEC's rules as pure functions), host_processes (the process table), host_machine_base
(plumbing and calls), host_rules, host_fault_rules and host_invariants (its steps and
checks). host_handshake holds the other host property.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import get_state_machine_test

from pluginconf.fuzz.host_bounds import STEPS
from pluginconf.fuzz.host_context import HostFuzzContext
from pluginconf.fuzz.host_fault_rules import FaultRules
from pluginconf.fuzz.host_handshake import MALFORMED_HANDSHAKE
from pluginconf.fuzz.host_invariants import Invariants
from pluginconf.fuzz.host_rules import PluginRules
from pluginconf.fuzz.model import FuzzProperty, FuzzTarget, HypothesisTest

__all__ = ["PROPERTIES", "HostMachine", "state_machine_property"]


class HostMachine(PluginRules, FaultRules, Invariants):
    """The whole machine: its rules, fault rules and invariants (see HostMachineBase)."""


STATE_MACHINE_REQUIREMENTS = (
    "SV-1", "SV-2", "SV-3", "SV-7", "SV-8", "SV-9", "SV-14", "SV-16", "SV-17", "SV-20",
    "HK-1", "HK-11", "HK-14", "LC-1", "LC-3", "RR-1", "RR-3", "NT-1", "NT-3", "FL-1",
    "FL-2", "FL-6", "SE-3", "SE-10",
)  # fmt: skip


def state_machine_property(steps: int = STEPS) -> FuzzProperty:
    """host/lifecycle/state-machine, running ``steps`` steps per example."""

    def build(ctx: HostFuzzContext) -> HypothesisTest:
        class HostLifecycle(HostMachine):
            context = ctx

        inner = get_state_machine_test(
            HostLifecycle,
            settings=Settings(
                stateful_step_count=steps, deadline=None, suppress_health_check=list(HealthCheck)
            ),
        ).hypothesis.inner_test  # type: ignore[attr-defined]
        # get_state_machine_test has applied its settings; the campaign applies its own to
        # this test instead, which runs the same machine.
        test: HypothesisTest = given(st.data())(inner)
        return test

    return FuzzProperty(
        "lifecycle/state-machine",
        FuzzTarget.HOST,
        "under any sequence of loads, hooks, HTTP bursts, kills, hangs, stalls, fault "
        "schedules, configuration changes, disables and enables, the host's reported states "
        "agree with the processes (one live process per active plugin, none left or unreaped "
        "otherwise), restarts follow the policy, undisturbed plugins answer exactly, and no "
        "call outlives its deadline",
        STATE_MACHINE_REQUIREMENTS,
        build,
        scale=0.01,
        settings={"stateful_step_count": steps},
    )


PROPERTIES = (state_machine_property(), MALFORMED_HANDSHAKE)
