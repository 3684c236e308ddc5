"""The host properties: the state machine and the malformed handshakes, run against the
reference host and against a host with a supervision bug, and the SPEC checks they are built
from, on transitions written by hand."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings

from pluginconf.control import control_pb2
from pluginconf.fuzz.campaign import CampaignSettings, run_property
from pluginconf.fuzz.host.checks import (
    ConfigChange,
    acceptable_configurations,
    restart_problems,
    start_problems,
    transition_problems,
)
from pluginconf.fuzz.host.context import HostFuzzContext
from pluginconf.fuzz.host.handshake import MALFORMED_HANDSHAKE, expected_refusals
from pluginconf.fuzz.host.machine import PROPERTIES, state_machine_property
from pluginconf.fuzz.model import FuzzProperty
from pluginconf.fuzz.strategies.faults import (
    FaultAction,
    ScheduledFault,
    SignalInjector,
    fault_schedules,
)
from pluginconf.fuzz.strategies.host import Policy
from pluginconf.runner.host.observer import Observed
from pluginconf.runner.options import HostSuiteOptions
from pluginconf.runner.reports.result import Result

MUTANT = Path(__file__).resolve().parents[2] / "mutants" / "host_mutant.py"
POLICY = Policy(hook_timeout_s=1.0, restart_limit=3, restart_window_s=10.0)


def campaign(prop: FuzzProperty, options: HostSuiteOptions, examples: int, seed: int) -> Result:
    """Run ``examples`` examples of ``prop`` on a context of its own, closed after."""
    runner = asyncio.Runner()
    ctx = HostFuzzContext(runner, options)
    try:
        wanted = CampaignSettings(examples=round(examples / prop.scale), seed=seed, shrink=False)
        return run_property(prop, ctx, wanted)
    finally:
        runner.run(ctx.aclose())
        runner.close()


def show(run: Result) -> str:
    if not run.failed:
        return f"{run.examples} examples, no failure"
    return f"{run.message}\n--- example ---\n{run.example}"


# -- against hosts ---------------------------------------------------------------------------


@pytest.mark.runs_long(17)
def test_the_state_machine_passes_on_the_reference_host() -> None:
    run = campaign(state_machine_property(), HostSuiteOptions(), examples=4, seed=7)
    assert not run.failed, show(run)
    assert run.examples >= 4


def test_malformed_handshakes_are_refused_by_the_reference_host() -> None:
    run = campaign(MALFORMED_HANDSHAKE, HostSuiteOptions(), examples=6, seed=3)
    assert not run.failed, show(run)
    assert run.examples >= 6


def test_the_state_machine_catches_a_host_that_gives_up_at_the_first_crash() -> None:
    broken = HostSuiteOptions(command=(sys.executable, str(MUTANT), "no-restart"))
    run = campaign(state_machine_property(steps=8), broken, examples=6, seed=7)
    assert run.failed, f"the broken host passed {run.examples} examples"
    assert run.id == "host/lifecycle/state-machine"
    message = run.message
    assert "SV-9" in message or "SV-8" in message, message
    assert "with restart_limit" in message and "must restart the plugin" in message, message
    assert "state failed" in message, message  # the host's status, as evidence
    assert "observed:" in message, message  # and what the fake saw
    example = run.example
    assert "state = HostLifecycle()" in example, example
    assert "state.first_plugin(" in example, example
    assert "state.teardown()" in example, example


def test_malformed_handshakes_catch_a_host_that_reports_a_generic_error() -> None:
    broken = HostSuiteOptions(command=(sys.executable, str(MUTANT), "generic-error-kind"))
    run = campaign(MALFORMED_HANDSHAKE, broken, examples=3, seed=3)
    assert run.failed, f"the broken host passed {run.examples} examples"
    assert "'launch_failed'" in run.message, run.message
    assert "the SPEC allows" in run.message, run.message
    assert "malformed_handshake(" in run.example, run.example


def test_the_properties_are_host_properties_with_stable_ids() -> None:
    assert [p.full_id for p in PROPERTIES] == [
        "host/lifecycle/state-machine",
        "host/launch/malformed-handshake",
    ]
    assert all(0 < p.scale <= 0.05 for p in PROPERTIES)
    assert PROPERTIES[0].settings == {"stateful_step_count": 12}


# -- the handshake lines the SPEC refuses, and how -------------------------------------------


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        ("garbage", {"start_timeout"}),  # no '|': noise (HS-18)
        ("", {"start_timeout"}),
        ("2|1|unix|/x|grpc", {"core_version_mismatch"}),
        ("1|7|unix|/x|grpc", {"app_version_mismatch"}),
        ("1|1|udp|/x|grpc", {"unknown_network"}),
        ("1|1|unix|/x|netrpc", {"unsupported_protocol"}),
        ("1|1|unix||grpc", {"handshake_malformed"}),
        ("1|1|tcp|192.0.2.1:4000|grpc", {"handshake_malformed"}),  # HS-21
        ("\u00b2|1|unix|/x|grpc", {"handshake_malformed"}),
        ("1|1|unix|/x", {"handshake_malformed"}),
        ("1|1|unix|/x|grpc|not*base64", {"handshake_malformed", "tls_error"}),
        (
            "1|1|unix|/x|grpc|AAAA",
            {"tls_error", "unreachable", "not_serving", "implemented_failed"},
        ),
        ("1|1|unix|/nonexistent/x.sock|grpc", {"unreachable", "not_serving", "implemented_failed"}),
    ],
)
def test_expected_refusals(line: str, kinds: set[str]) -> None:
    assert expected_refusals(line, {1}) == kinds


def test_a_line_breaking_several_rules_may_be_refused_for_any() -> None:
    kinds = expected_refusals("3|+1|udp|/x|", {1})
    assert {"core_version_mismatch", "handshake_malformed", "unknown_network"} <= kinds
    assert "unsupported_protocol" in kinds
    assert "app_version_mismatch" not in kinds  # '+1' reads as 1, a version the host has


# -- the SPEC checks on transitions ----------------------------------------------------------


def transitions(*moves: tuple[str, str, float, str]) -> list[control_pb2.Transition]:
    return [
        control_pb2.Transition(old_state=old, new_state=new, wall_time=at, error_kind=kind)
        for old, new, at, kind in moves
    ]


def crash_loop(*crash_times: float, then: str = "restarting") -> list[control_pb2.Transition]:
    """Enabled at 0, active, then a crash at each time, each followed by a restart."""
    moves = [("", "starting", 0.0, ""), ("starting", "active", 0.5, "")]
    for n, at in enumerate(crash_times):
        last = n + 1 == len(crash_times)
        moves.append(("active", "crashed", at, "unexpected_exit"))
        if last and then == "failed":
            moves.append(("crashed", "failed", at + 0.01, "restart_limit"))
        else:
            moves += [
                ("crashed", "restarting", at + 0.01, ""),
                ("restarting", "starting", at + 0.1, ""),
                ("starting", "active", at + 0.5, ""),
            ]
    return transitions(*moves)


def test_restarts_within_the_limit_are_fine() -> None:
    assert restart_problems(crash_loop(1.0, 2.0), POLICY, [0.0]) == []
    assert restart_problems(crash_loop(1.0, 2.0, 3.0, then="failed"), POLICY, [0.0]) == []


def test_a_restart_after_the_limit_is_found() -> None:
    (problem,) = restart_problems(crash_loop(1.0, 2.0, 3.0), POLICY, [0.0])
    assert "must put the plugin in `failed` (SV-9)" in problem


def test_crashes_outside_the_window_do_not_count() -> None:
    assert restart_problems(crash_loop(1.0, 12.0, 23.0), POLICY, [0.0]) == []


def test_giving_up_early_is_found() -> None:
    problems = restart_problems(crash_loop(1.0, 2.0, then="failed"), POLICY, [0.0])
    assert any("must restart the plugin (SV-8, SV-9)" in p for p in problems), problems


def test_leaving_failed_without_an_enable_is_found() -> None:
    moves = crash_loop(1.0, 2.0, 3.0, then="failed")
    moves += transitions(("failed", "starting", 5.0, ""))
    (problem,) = restart_problems(moves, POLICY, [0.0])
    assert "came without an EnablePlugin" in problem
    assert restart_problems(moves, POLICY, [0.0, 4.9]) == []


def test_transitions_outside_the_table_are_found() -> None:
    status = control_pb2.PluginStatus(
        state="active",
        transitions=transitions(
            ("", "starting", 0.0, ""),
            ("starting", "active", 1.0, ""),
            ("active", "restarting", 2.0, ""),
            ("restarting", "crashed", 3.0, ""),
            ("crashed", "active", 4.0, "unexpected_exit"),
        ),
    )
    problems = transition_problems(status)
    assert any("active -> restarting) is not a transition" in p for p in problems), problems
    assert any("carries no error kind (SV-2)" in p for p in problems), problems


def started(pid: int, wall: float) -> Observed:
    return Observed("p-1", "started", pid, 1, 0.0, wall, {})


def test_processes_start_only_while_starting() -> None:
    moves = crash_loop(2.0, then="failed")
    assert start_problems(moves, [started(10, 0.1)]) == []
    (late,) = start_problems(moves, [started(10, 0.1), started(11, 4.0)])
    assert "started when the plugin was 'failed'" in late
    (double,) = start_problems(moves, [started(10, 0.1), started(11, 0.2)])
    assert "all started during the one start" in double


def test_the_configuration_a_process_gets() -> None:
    initial = ConfigChange(0.0, 0.0, {"a": "1"}, True)
    applied = ConfigChange(5.0, 5.1, {"a": "2"}, True)
    refused = ConfigChange(7.0, 7.1, {"a": "3"}, False)
    changes = [initial, applied, refused]
    assert acceptable_configurations(changes, 1.0) == [{"a": "1"}]
    assert acceptable_configurations(changes, 5.05) == [{"a": "1"}, {"a": "2"}]
    assert acceptable_configurations(changes, 6.0) == [{"a": "2"}]
    assert acceptable_configurations(changes, 8.0) == [{"a": "2"}, {"a": "3"}]


def test_two_changes_sent_at_once_may_be_applied_in_either_order() -> None:
    initial = ConfigChange(0.0, 0.0, {}, True)
    first = ConfigChange(5.0, 5.2, {"a": "1"}, True)
    second = ConfigChange(5.01, 5.3, {"a": "2"}, True)
    later = [initial, first, second]
    assert acceptable_configurations(later, 6.0) == [{"a": "1"}, {"a": "2"}]


# -- fault schedules and the signals ---------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(fault_schedules(max_faults=3, max_delay_ms=800, max_pause_ms=700, targets=3))
def test_fault_schedules_stay_within_their_bounds(schedule: tuple[ScheduledFault, ...]) -> None:
    assert 1 <= len(schedule) <= 3
    for fault in schedule:
        assert 0 <= fault.delay_ms <= 800
        assert 0 <= fault.target < 3
        held = fault.action in (FaultAction.SLOW, FaultAction.FLAP)
        assert (10 <= fault.pause_ms <= 700) if held else fault.pause_ms == 0


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "30"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_the_injector_resumes_what_it_stopped(sleeper: subprocess.Popen[bytes]) -> None:
    injector = SignalInjector()
    proc = SignalInjector.process(sleeper.pid, time.time())
    assert proc is not None
    assert injector.stop(proc)
    assert injector.stopped == [sleeper.pid]
    assert settles_stopped(proc, True)
    assert injector.release_all() == [sleeper.pid]
    assert injector.stopped == []
    assert not settles_stopped(proc, False)


def test_the_injector_leaves_a_reused_pid_alone(sleeper: subprocess.Popen[bytes]) -> None:
    # A process that started after the plugin said it started is another one.
    assert SignalInjector.process(sleeper.pid, time.time() - 3600) is None
    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    assert SignalInjector.process(sleeper.pid, time.time()) is None


def settles_stopped(proc: psutil.Process, expected: bool) -> bool:
    """Whether the process is stopped, once it is as ``expected`` or 5 s have passed."""
    deadline = time.monotonic() + 5
    while True:  # a signal's effect shows in /proc a moment later
        now = proc.status() == psutil.STATUS_STOPPED
        if now == expected or time.monotonic() > deadline:
            return now
        time.sleep(0.01)
