"""The host target's properties, and ``host/lifecycle/state-machine`` itself.

The state machine drives a host through its adapter as an application and a hostile machine
would. Its steps load up to three fake plugins (well-behaved, with slow hooks, with
flapping health, or hanging on commands and notifications; some with a process in their
group that only a group kill ends), trip and probe a circuit breaker, kill a process while
it holds a call or an HTTP exchange, fire ExecuteCommand, filter-chain and notification
posts, send HTTP /echo bursts, kill, hang and stall plugin processes (alone, or by a fault
schedule under traffic: strategies/faults.py), change configurations, disable and enable
plugins. Calls that outlive their deadline fail the step
at once, whatever the plugin's state.

After every step it waits, on WatchPlugin, until each plugin rests (active or failed, or
stopped), and checks what the host reports against what the fakes observed and what the
process table shows: the transitions follow SV-1's table; restarts follow the policy (SV-8,
SV-9); an active plugin has exactly the one live process the host names, activated as LC-1
says; every other process, its process group and its socket directory are gone (SV-16 to
SV-18); what the fakes received is what was sent (HK-14); changes to one plugin never
overlap (LC-3); a plugin left alone does not crash (SV-20), and answers exactly. Its rules
also check the breaker against a model (breaker.py: SV-11, SV-12, SE-4), the deadline the
plugin sees (HK-11), HTTP errors when a process dies mid-exchange (SE-5, SE-6), and the 1 s
bounds of SV-4, SV-5 and NT-2, judged against the same-run yardstick (runner/timing.py).

The machine below names every rule and invariant, with what each does; the work is done by
a driver (driver.py: running steps, judging answers, waiting for the host; calls.py: calls
through the host) and by the rule implementations in rules/ (plugins, faults, breaker, exits,
fan_out, invariants), which it holds. Around them: bounds (timing), strategies.host (what it
draws), tracked (what it knows of each plugin), checks (the SPEC's rules as pure functions)
and processes (the process table). handshake holds the other host property.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from hypothesis import HealthCheck, given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)

from pluginconf.fuzz.host.bounds import MAX_PLUGINS, STEPS
from pluginconf.fuzz.host.context import HostFuzzContext
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.handshake import MALFORMED_HANDSHAKE
from pluginconf.fuzz.host.rules.breaker import BreakerRules
from pluginconf.fuzz.host.rules.exits import ExitRules
from pluginconf.fuzz.host.rules.faults import FaultRules
from pluginconf.fuzz.host.rules.invariants import Invariants
from pluginconf.fuzz.host.rules.plugins import PluginRules
from pluginconf.fuzz.host.tracked import Tracked
from pluginconf.fuzz.model import FuzzProperty, FuzzTarget, HypothesisTest
from pluginconf.fuzz.strategies.faults import ScheduledFault, fault_schedules
from pluginconf.fuzz.strategies.host import (
    Body,
    Call,
    Kind,
    PluginSetup,
    PostDraw,
    bodies,
    calls,
    commands,
    configurations,
    plugin_setups,
    posts,
)

__all__ = ["PROPERTIES", "HostMachine", "state_machine_property"]

# The plugins loaded; None stands for a plugin whose load was skipped after a failure (see
# `HostDriver.stopped`).
plugins: Bundle[Tracked | None] = Bundle("plugins")


class HostMachine(RuleBasedStateMachine):
    """One run: a fresh host, plugins loaded and disturbed, checked after each step.

    ``context`` is set by a subclass made per campaign (``state_machine_property``). Once a
    check has failed, the remaining steps are still drawn but do nothing, and teardown raises
    the failure (see ``HostDriver.stopped``)."""

    context: ClassVar[HostFuzzContext]

    def __init__(self) -> None:
        super().__init__()
        self.driver = HostDriver(self.context)
        self.plugins = PluginRules(self.driver)
        self.faults = FaultRules(self.driver)
        self.breaker = BreakerRules(self.driver)
        self.exits = ExitRules(self.driver)
        self.after_step = Invariants(self.driver)

    # -- plugins: load, disable, enable, configure (SV-1, SV-14, LC-1, LC-3) -------------------

    @initialize(target=plugins, setup=plugin_setups())
    def first_plugin(self, setup: PluginSetup) -> Tracked | None:
        """A plugin loaded and enabled becomes active (SV-1, LC-1)."""
        return self.plugins.first_plugin(setup)

    @initialize(target=plugins, setup=st.none() | plugin_setups())
    def second_plugin(self, setup: PluginSetup | None) -> MultipleResults[Tracked | None]:
        """Often a second plugin from the start (None: none)."""
        return self.plugins.second_plugin(setup)

    @precondition(lambda self: self.driver.loads < MAX_PLUGINS)
    @rule(target=plugins, setup=plugin_setups())
    def load_plugin(self, setup: PluginSetup) -> Tracked | None:
        """Up to three plugins in all."""
        return self.plugins.load_plugin(setup)

    @rule(plugin=plugins)
    def disable(self, plugin: Tracked) -> None:
        """DisablePlugin ends with the plugin stopped and no process left (SV-14, SV-16)."""
        self.plugins.disable(plugin)

    @rule(plugin=plugins)
    def enable(self, plugin: Tracked) -> None:
        """A disabled or failed plugin enabled again becomes active (SV-1, LC-1)."""
        self.plugins.enable(plugin)

    @rule(plugin=plugins, changes=st.lists(configurations(), min_size=1, max_size=2))
    def configure(self, plugin: Tracked, changes: list[Mapping[str, str]]) -> None:
        """Each configuration reaches the plugin exactly, one at a time (LC-3, HK-14)."""
        self.plugins.configure(plugin, changes)

    # -- hooks and HTTP through the host (RR-1, FL-1, NT-1, NT-3, SE-3, SE-10) ----------------

    @rule(plugin=plugins, command=commands)
    def execute_command(self, plugin: Tracked, command: str) -> None:
        """Answered exactly when healthy (RR-1), plugin_unavailable when off (RR-3)."""
        self.plugins.execute_command(plugin, command)

    @rule(plugin=plugins, burst=st.lists(bodies, min_size=1, max_size=4))
    def http_echo(self, plugin: Tracked, burst: list[Body]) -> None:
        """POST /echo, alone or 2 to 4 at once: exact when healthy (SE-10), 503 when off (SE-3)."""
        self.plugins.http_echo(plugin, burst)

    @rule(post=posts)
    def filter_post(self, post: PostDraw) -> None:
        """Every active plugin keeps the post as sent; the chain fails open (FL-1, FL-2, FL-6)."""
        self.plugins.filter_post(post)

    @rule(post=posts)
    def notify_post(self, post: PostDraw) -> None:
        """Every active plugin notified, past any hung one within 1 s (NT-1, NT-2, NT-3)."""
        self.plugins.notify_post(post)

    # -- faults: kill, hang, stall, alone or by a schedule under traffic -----------------------

    @rule(plugin=plugins)
    def kill(self, plugin: Tracked) -> None:
        """A killed process is noticed within 10 s, 1 s recommended (SV-3, SV-4)."""
        self.faults.kill(plugin)

    @rule(plugin=plugins)
    def kill_past_window(self, plugin: Tracked) -> None:
        """Past the restart window a kill is a first failure again (SV-8, SV-9)."""
        self.faults.kill_past_window(plugin)

    @rule(plugin=plugins)
    def hang(self, plugin: Tracked) -> None:
        """A process that stops answering is found by its health check and killed (SV-7)."""
        self.faults.hang(plugin)

    @rule(plugin=plugins, pause_ms=st.integers(10, 900))
    def stall(self, plugin: Tracked, pause_ms: int) -> None:
        """A process held for a while; the checks after the step hold either way."""
        self.faults.stall(plugin, pause_ms)

    @rule(
        schedule=fault_schedules(targets=MAX_PLUGINS), burst=st.lists(calls, min_size=1, max_size=4)
    )
    def fault_schedule(self, schedule: tuple[ScheduledFault, ...], burst: list[Call]) -> None:
        """Calls to the plugins a schedule spares stay exact (SV-20); hangs are found (SV-7)."""
        self.faults.fault_schedule(schedule, burst)

    # -- hung hooks: the circuit breaker (SV-11, SV-12, SE-4, HK-11) and NT-2 ------------------

    @precondition(lambda self: any(t.setup.kind == Kind.HANGING for t in self.driver.tracked))
    @rule(
        which=st.integers(0, MAX_PLUGINS - 1),
        reset_after=st.none() | st.integers(1, 2),
        trials=st.integers(2, 3),
    )
    def trip_breaker(self, which: int, reset_after: int | None, trials: int) -> None:
        """Failures open the circuit at the threshold, a success resets the count, calls and
        HTTP are refused while open, and one trial passes once it half-opens."""
        self.breaker.trip_breaker(which, reset_after, trials)

    @precondition(
        lambda self: len({t.setup.kind == Kind.HANGING for t in self.driver.tracked}) == 2
    )
    @rule(seed=st.integers(0, 2**31))
    def notify_past_hung(self, seed: int) -> None:
        """While one plugin hangs on a notification, the others get it within 1 s (NT-2)."""
        self.breaker.notify_past_hung(seed)

    # -- a process exiting under a call (SV-5) or an HTTP exchange (SE-5, SE-6) ----------------

    @rule(plugin=plugins, command=commands)
    def kill_in_call(self, plugin: Tracked, command: str) -> None:
        """A command held by a process that is killed fails within 1 s (SV-5)."""
        self.exits.kill_in_call(plugin, command)

    @rule(plugin=plugins, started=st.booleans())
    def cut_http(self, plugin: Tracked, started: bool) -> None:
        """Killed before the response began: 502 (SE-5); after: the response aborted (SE-6)."""
        self.exits.cut_http(plugin, started)

    # -- after every step ------------------------------------------------------------------------

    @invariant()
    def host_agrees(self) -> None:
        """States agree with processes (SV-16 to SV-18), transitions and restarts with the
        SPEC (SV-1, SV-2, SV-8, SV-9), deliveries are exact (HK-14, LC-3), activations in order
        (HK-1, LC-1), quiet plugins stay up (SV-20) and answer exactly."""
        self.after_step.host_agrees()

    def teardown(self) -> None:
        """Resume whatever is still stopped, then unload everything (leftovers fail)."""
        self.driver.teardown()


STATE_MACHINE_REQUIREMENTS = (
    "SV-1", "SV-2", "SV-3", "SV-7", "SV-8", "SV-9", "SV-14", "SV-16", "SV-17", "SV-20",
    "HK-1", "HK-11", "HK-14", "LC-1", "LC-3", "RR-1", "RR-3", "NT-1", "NT-3", "FL-1",
    "FL-2", "FL-6", "SE-3", "SE-10", "SV-4", "SV-5", "SV-11", "SV-12", "SE-4", "SE-5",
    "SE-6", "NT-2",
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
        "otherwise), restarts follow the policy, undisturbed plugins answer exactly, no "
        "call outlives its deadline, the circuit breaker behaves as modelled, a process "
        "dying under a call or an exchange fails it as the SPEC says, and exits, calls in "
        "progress and notifications past a hung plugin meet their 1 s bounds",
        STATE_MACHINE_REQUIREMENTS,
        build,
        scale=0.01,
        settings={"stateful_step_count": steps},
    )


PROPERTIES = (state_machine_property(), MALFORMED_HANDSHAKE)
