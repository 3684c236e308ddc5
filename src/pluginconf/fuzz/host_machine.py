"""The host target's properties: a state machine over supervision, and refused handshakes.

``host/lifecycle/state-machine`` drives a host through its adapter as an application and a
hostile machine would. Its steps load up to three fake plugins (well-behaved, with slow
hooks, or with flapping health; some with a process in their group that only a group kill
ends), fire ExecuteCommand, filter-chain and notification posts, send HTTP /echo bursts,
kill, hang and stall plugin processes (alone, or by a fault schedule under traffic, see
faults.py), change configurations, disable and enable plugins. Calls that outlive their
deadline fail the step at once, whatever the plugin's state.

After every step it waits, on WatchPlugin, until each plugin rests (active or failed, or
stopped), and checks what the host reports against what the fakes observed and what the
process table shows: the transitions follow SV-1's table; restarts follow the policy (SV-8,
SV-9); an active plugin has exactly the one live process the host names, activated as LC-1
says; every other process, its process group and its socket directory are gone (SV-16 to
SV-18); what the fakes received is what was sent (HK-14); changes to one plugin never
overlap (LC-3); a plugin left alone does not crash (SV-20), and answers exactly.

``host/launch/malformed-handshake`` makes a fake print a broken handshake line and checks that
the host refuses it with an error kind the SPEC allows for that very line (HS-18 to HS-22).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import ipaddress
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, TypeVar

import grpc
import httpx
import psutil
from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, note
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
)

from pluginconf.control import control_pb2
from pluginconf.fuzz.faults import (
    FLAP_PULSES,
    FaultAction,
    ScheduledFault,
    SignalInjector,
    fault_schedules,
)
from pluginconf.fuzz.handshake import malformed_lines
from pluginconf.fuzz.host_context import CLOSE_BOUND_S, HostFuzzContext
from pluginconf.fuzz.http import KIB, body_sizes
from pluginconf.fuzz.model import (
    FuzzProperty,
    FuzzTarget,
    HypothesisTest,
    PropertyFailed,
    PropertyNotApplicable,
)
from pluginconf.protocol.handshake import NETWORKS, PROTOCOL_GRPC
from pluginconf.runner.host_target import FakePlugin, HostTarget, describe_status
from pluginconf.runner.model import CaseFailed, CaseSkipped
from pluginconf.runner.observer import Observed
from pluginconf.v1 import hooks_pb2

T = TypeVar("T")
Status = control_pb2.PluginStatus
Transition = control_pb2.Transition

# -- timing ------------------------------------------------------------------------------------

# Allowed beyond every deadline the SPEC sets: the adapter's round trip on a loaded machine.
SLACK_S = 3.0
# Allowed beyond a detection the SPEC bounds (a hang, an exit): the host's own timers too
# run late on a loaded machine.
DETECTION_SLACK_S = 5.0
# Host and fakes date events with the same clock; this covers the order of two events.
CLOCK_SLACK_S = 0.25
HEALTH_INTERVAL_S = 0.2
HEALTH_TIMEOUT_S = 0.5
# Generous: a fake is a Python process, and starting one on a loaded machine takes seconds.
START_TIMEOUT_S = 20.0
STOP_GRACE_S = 0.5
DEACTIVATE_S = 10.0  # OnDeactivate's deadline, fixed by LC-9
EXIT_DETECTION_S = 10.0  # SV-3
# How long a process the host stopped, killed or gave up may take to be gone and reaped.
GONE_S = 5.0
# How long after a failed call the host may take to report the change that explains it.
DETECT_S = HEALTH_INTERVAL_S + HEALTH_TIMEOUT_S + DETECTION_SLACK_S
START_BOUND_S = START_TIMEOUT_S + SLACK_S + 2.0
HTTP_BOUND_S = 20.0
DISABLE_BOUND_S = DEACTIVATE_S + 3 * STOP_GRACE_S + SLACK_S
# What a FireHook may take beyond the hook deadline before the suite stops waiting for it.
FIREHOOK_GRACE_S = SLACK_S + 5.0
RULE_BOUND_S = 90.0
INVARIANT_BOUND_S = 180.0

# -- the machine's size ------------------------------------------------------------------------

MAX_PLUGINS = 3
STEPS = 12
MAX_BODY = 256 * KIB
NON_BMP = "🧩𝄞𠀋"

# The states a plugin rests in: the machine waits for one of these after every step.
ON_STATES = ("active", "failed")
OFF_STATES = ("stopped", "loaded")
# SV-1's table: the only transitions a host may report ("" is none: the first).
ALLOWED = frozenset(
    {
        ("", "starting"), ("stopped", "starting"), ("failed", "starting"),
        ("starting", "active"), ("starting", "crashed"), ("starting", "failed"),
        ("active", "crashed"), ("crashed", "restarting"), ("crashed", "failed"),
        ("restarting", "starting"), ("starting", "stopped"), ("active", "stopped"),
        ("crashed", "stopped"), ("restarting", "stopped"), ("failed", "stopped"),
    }
)  # fmt: skip
# A running process's end, as the host may report it (SV-3, SV-7).
RUNNING_CRASH_KINDS = frozenset({"unexpected_exit", "health_check_failed"})
# The transitions that enable a plugin (the starting of SV-1 after none, stopped or failed).
ENABLED_FROM = ("", "stopped", "failed")


# -- what the machine draws --------------------------------------------------------------------

_char = st.characters(exclude_categories=["Cs"])
# Configurations also go into plugin.toml (TOML refuses raw control characters).
_config_char = st.characters(exclude_categories=["Cs", "Cc"])
_non_bmp_char = st.characters(min_codepoint=0x10000, exclude_categories=["Cs"])


def texts(max_size: int = 24, chars: st.SearchStrategy[str] = _char) -> st.SearchStrategy[str]:
    """Any text with at least one character outside the BMP (HK-14)."""
    part = st.text(chars, max_size=max_size)
    return st.builds(lambda a, c, b: a + c + b, part, _non_bmp_char, part)


def configurations() -> st.SearchStrategy[dict[str, str]]:
    key = st.text(_config_char, min_size=1, max_size=12)
    return st.dictionaries(key, texts(12, _config_char), max_size=3)


# Whitespace around, which a host must not trim (HK-14).
_around = st.sampled_from(["", " ", "  ", "\t", "\n"])
commands = st.builds(lambda a, text, b: a + "/" + text + b, _around, texts(30), _around)


class Kind(enum.StrEnum):
    """The fakes the machine loads."""

    WELL_BEHAVED = "well-behaved"
    SLOW_HOOKS = "slow-hooks"
    FLAPPING = "flapping"  # health alternates SERVING / NOT_SERVING: the host restarts it

    @property
    def short(self) -> str:
        """The plugin id's prefix."""
        return self.value.split("-")[0][:4]


@dataclass(frozen=True)
class Policy:
    """The HostPolicy a plugin is loaded with, in seconds (host_policy's field names)."""

    hook_timeout_s: float
    restart_limit: int
    restart_window_s: float
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 1.0
    health_interval_s: float = HEALTH_INTERVAL_S
    health_timeout_s: float = HEALTH_TIMEOUT_S
    backoff_base_s: float = 0.05
    backoff_max_s: float = 0.2
    stop_grace_s: float = STOP_GRACE_S
    start_timeout_s: float = START_TIMEOUT_S

    def fields(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hang_detection_s(self) -> float:
        """SV-7: a process that stops answering fails its next health check."""
        return self.health_interval_s + self.health_timeout_s


@dataclass(frozen=True)
class PluginSetup:
    kind: Kind
    scenario: Mapping[str, Any]
    policy: Policy
    configuration: Mapping[str, str]

    def __str__(self) -> str:
        p = self.policy
        return (
            f"PluginSetup({self.kind.value}, {json.dumps(dict(self.scenario))}, hook timeout "
            f"{p.hook_timeout_s:g}s, restart limit {p.restart_limit} in {p.restart_window_s:g}s, "
            f"breaker cooldown {p.breaker_cooldown_s:g}s, "
            f"configuration={dict(self.configuration)!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis prints it in a failing example's steps: on one line."""
        printer.text(str(self))


@st.composite
def plugin_setups(draw: st.DrawFn) -> PluginSetup:
    kind = draw(st.sampled_from(Kind))
    scenario: dict[str, Any] = {}
    if kind == Kind.SLOW_HOOKS:
        scenario["hook_delay_ms"] = draw(st.integers(1, 300))
    elif kind == Kind.FLAPPING:
        scenario["health"] = {"flap_every_s": draw(st.sampled_from([1.0, 1.5, 2.5]))}
    if draw(st.booleans()):
        # A `sleep` in the plugin's process group that only a group kill ends (SV-16).
        scenario["spawn_grandchild"] = {"seconds": 120}
    policy = Policy(
        hook_timeout_s=draw(st.sampled_from([1.0, 1.5, 2.0])),
        restart_limit=draw(st.integers(2, 5)),
        restart_window_s=float(draw(st.integers(1, 5))),
        breaker_cooldown_s=draw(st.sampled_from([0.5, 1.0])),
    )
    return PluginSetup(kind, scenario, policy, draw(configurations()))


@dataclass(frozen=True)
class Body:
    """An /echo body: ``size`` bytes from ``seed`` (drawn as two numbers, not byte by byte)."""

    size: int
    seed: int

    def data(self) -> bytes:
        return hashlib.shake_256(self.seed.to_bytes(8, "big")).digest(self.size)

    def describe(self) -> str:
        return f"{self.size} bytes (seed {self.seed})"


bodies = st.builds(Body, body_sizes(MAX_BODY), st.integers(0, 2**32 - 1))


@dataclass(frozen=True)
class PostDraw:
    """A post, drawn as plain fields so that the printed steps stay one line each."""

    id: str
    channel_id: str
    user_id: str
    message: str
    props: tuple[tuple[str, str], ...]
    create_at: int

    def post(self) -> hooks_pb2.Post:
        return hooks_pb2.Post(
            id=self.id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            message=self.message,
            props=dict(self.props),
            create_at=self.create_at,
        )


posts = st.builds(
    PostDraw,
    st.text(_char, max_size=8),
    st.text(_char, max_size=8),
    st.text(_char, max_size=8),
    texts(40),
    st.lists(st.tuples(st.text(_char, max_size=8), texts(8)), max_size=2).map(tuple),
    st.integers(-(2**63), 2**63 - 1),
)


@dataclass(frozen=True)
class Call:
    """One call of a burst of traffic, ``delay_ms`` into it, to the plugin at ``target``:
    an /echo of ``body``, a ``configuration`` change, a ``post`` through the filter chain
    (every plugin's), or else ``command``."""

    delay_ms: int
    target: int
    command: str = ""
    body: Body | None = None
    configuration: Mapping[str, str] | None = None
    post: PostDraw | None = None

    def describe(self) -> str:
        if self.body is not None:
            return f"POST /echo of {self.body.describe()}"
        if self.configuration is not None:
            return f"OnConfigurationChange({shown(self.configuration)})"
        if self.post is not None:
            return f"MessageWillBePosted({shown(self.post.message)})"
        return f"ExecuteCommand {shown(self.command)}"


# Spread over about as long as a fault schedule lasts, so that faults meet calls in flight.
_delays = st.integers(0, 1000)
_targets = st.integers(0, MAX_PLUGINS - 1)
calls = st.one_of(
    st.builds(Call, _delays, _targets, command=commands),
    st.builds(Call, _delays, _targets, body=bodies),
    st.builds(Call, _delays, _targets, configuration=configurations()),
    st.builds(Call, _delays, _targets, post=posts),
)


# -- what the machine knows of each plugin -----------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    """A configuration sent (monotonic times), and whether the host said it was applied."""

    sent: float
    done: float
    configuration: Mapping[str, str]
    accepted: bool


def acceptable_configurations(
    changes: Sequence[ConfigChange], at: float
) -> list[Mapping[str, str]]:
    """The configurations a process activated at ``at`` may be given (LC-1: the complete
    current one). A change the host accepted before ``at`` replaces those that ended before
    it was sent; one sent meanwhile may have been applied after it, and one that was
    refused, or still pending at ``at``, may be current too."""
    candidates: list[ConfigChange] = []
    for change in changes:  # in the order sent
        if change.sent > at:
            break
        if change.accepted and change.done < at:
            candidates = [c for c in candidates if c.done > change.sent]
        candidates.append(change)
    return [c.configuration for c in candidates]


@dataclass
class Tracked:
    """A plugin the machine loaded, and what the machine did to it."""

    fake: FakePlugin
    setup: PluginSetup
    enables: list[float]  # wall time of each EnablePlugin sent (LoadPlugin's enable included)
    configurations: list[ConfigChange]
    enabled: bool = True
    # (from, to), monotonic: calls may fail or be late then. A fault was injected, or a
    # call failed and may have counted towards the circuit (SV-11), which needs its cooldown.
    disturbances: list[tuple[float, float]] = field(default_factory=list)
    # Until then (wall) the plugin's crashes are the machine's doing (SV-20 otherwise).
    faulted_until: float = 0.0
    seen: int = 0  # transitions already checked for SV-20
    commands: set[str] = field(default_factory=set)  # every command sent to it
    delivered: int = 0  # calls already checked for HK-14
    trial_pending: bool = False  # a call failed since the last exact trial command

    @property
    def id(self) -> str:
        return self.fake.plugin_id

    @property
    def policy(self) -> Policy:
        return self.setup.policy

    @property
    def disturbed_until(self) -> float:
        return max((end for _, end in self.disturbances), default=0.0)

    def disturb(self, for_s: float = 0.0) -> None:
        """Something happened to the plugin now, lasting ``for_s``: answers may be wrong
        until its effects (health detection, a restart, the breaker's cooldown) are over."""
        settle = self.policy.breaker_cooldown_s + self.policy.hook_timeout_s + 1.0
        now = time.monotonic()
        self.disturbances.append((now, now + for_s + settle))
        self.acted_on(for_s)

    def disturbed_at(self, at: float) -> bool:
        return any(start <= at <= end for start, end in self.disturbances)

    def acted_on(self, for_s: float = 0.0) -> None:
        """The machine changes the plugin's state now, for ``for_s``: the crashes and stops
        until its effects are over are not the host's own doing (SV-20)."""
        fault = for_s + self.policy.hang_detection_s + DETECTION_SLACK_S
        self.faulted_until = max(self.faulted_until, time.time() + fault)

    def __repr__(self) -> str:
        return f"Tracked({self.id!r}, {self.setup.kind})"


@dataclass(frozen=True)
class Before:
    """The plugin as a call found it: its status, when, and whether it was undisturbed."""

    status: Status
    at: float
    clean: bool

    @property
    def state(self) -> str:
        return str(self.status.state)


@dataclass(frozen=True)
class Answer:
    """One call's outcome: what was wrong with it (None: exact), and a violation that no
    state of the plugin excuses (a call outliving its bound)."""

    problem: str | None
    fatal: str | None = None
    error_kind: str = ""
    response: httpx.Response | None = None


@dataclass(frozen=True)
class Proc:
    """A plugin process, as its fake reported starting, or a process it started in its
    group (``parent`` is then that plugin process)."""

    pid: int
    started_wall: float
    parent: int = 0
    socket_dir: str = ""  # PLUGIN_UNIX_SOCKET_DIR, as the host gave it (HS-4)

    def find(self) -> psutil.Process | None:
        return SignalInjector.process(self.pid, self.started_wall)

    def describe(self) -> str:
        proc = self.find()
        if proc is None:
            return f"{self.pid} (gone)"
        try:
            status = proc.status()
        except psutil.Error:
            return f"{self.pid} (gone)"
        if self.parent:
            return f"{self.pid} (started by {self.parent} in its process group; {status}; SV-16)"
        if status == psutil.STATUS_ZOMBIE:
            return f"{self.pid} (a zombie: exited, not reaped; SV-17)"
        return f"{self.pid} ({status}; SV-16)"


def processes(fake: FakePlugin) -> list[Proc]:
    return [Proc(e.pid, e.wall, socket_dir=_socket_dir(e)) for e in fake.events("started")]


def _socket_dir(started: Observed) -> str:
    env = started.get("env", {})
    return str(env.get("PLUGIN_UNIX_SOCKET_DIR", "")) if isinstance(env, dict) else ""


def grandchildren(fake: FakePlugin) -> list[Proc]:
    """The processes the plugin's processes started in their group (spawn_grandchild)."""
    return [
        Proc(int(e.get("grandchild_pid", 0)), e.wall, parent=e.pid)
        for e in fake.events("grandchild")
        if e.get("grandchild_pid")
    ]


def runs(proc: Proc) -> bool:
    """The process exists and is not a zombie."""
    found = proc.find()
    if found is None:
        return False
    try:
        return found.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def still_there(procs: Sequence[Proc], timeout_s: float) -> list[Proc]:
    """Wait (polling: an exit has no event here) until none of ``procs`` exists, zombies
    included; those still there after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if p.find() is not None]
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


def _existing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]  # a stat each: nothing to wait for


async def paths_left(paths: Sequence[str], timeout_s: float) -> list[str]:
    """Wait (polling: a removal has no event) until none of ``paths`` exists."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = _existing(paths)
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


async def watch_until(
    fake: FakePlugin, predicate: Callable[[Status], bool], timeout_s: float
) -> Status | None:
    """The first status (WatchPlugin: now, then at each change) that satisfies
    ``predicate``; None after ``timeout_s`` or when the stream ends."""
    ref = control_pb2.PluginRef(plugin_id=fake.plugin_id)
    watch = fake.target.control().WatchPlugin(ref)
    try:
        async with asyncio.timeout(timeout_s):
            async for status in watch:
                if predicate(status):
                    return status
    except TimeoutError:
        pass
    finally:
        watch.cancel()
    return None


def moved_on(before: Status) -> Callable[[Status], bool]:
    return lambda s: len(s.transitions) > len(before.transitions)


def received(event: Observed, message_type: type[Message]) -> Any:
    return ParseDict(event.get("request", {}), message_type())


def _key(post: hooks_pb2.Post) -> bytes:
    """A post's identity for comparison (map entries in order)."""
    return post.SerializeToString(deterministic=True)


def describe_error(error: control_pb2.HostError) -> str:
    text = f"{error.kind}: {error.message}"
    return f"{text} (code {error.code})" if error.code else text


def describe_step(step: control_pb2.FilterStep) -> str:
    return (
        f"{step.outcome} ({describe_error(step.error)})" if step.HasField("error") else step.outcome
    )


def shown(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- SPEC checks on what the host reported -----------------------------------------------------


def transition_problems(status: Status) -> list[str]:
    """SV-1, SV-2: each transition is in the table, follows the one before, is dated in
    order, and a crash or failure names its error kind. The fakes answer no activation
    AppError, so `starting -> failed` (LC-4, LC-7) is wrong here too."""
    problems = []
    previous, previous_wall = "", 0.0
    for i, t in enumerate(status.transitions):
        move = f"transition {i} ({t.old_state or '(none)'} -> {t.new_state})"
        if t.old_state != previous:
            problems.append(
                f"{move} leaves {t.old_state!r}, but the plugin was {previous!r} (SV-2)"
            )
        if (t.old_state, t.new_state) not in ALLOWED:
            problems.append(f"{move} is not a transition of the SPEC's table (SV-1)")
        elif (t.old_state, t.new_state) == ("starting", "failed"):
            problems.append(
                f"{move}: only an activation AppError fails a start for good (LC-4, LC-7), "
                "and these fakes answer none"
            )
        if t.new_state in ("crashed", "failed") and not t.error_kind:
            problems.append(f"{move} carries no error kind (SV-2)")
        if t.wall_time + CLOCK_SLACK_S < previous_wall:
            problems.append(f"{move} is dated before the transition it follows (SV-2)")
        previous, previous_wall = t.new_state, t.wall_time
    if status.transitions and status.state != previous:
        problems.append(
            f"the state is {status.state!r}, but the last transition entered {previous!r}"
        )
    return problems


def _failures(
    transitions: Sequence[Transition], index: int, window_s: float, cleared_by: Collection[str]
) -> int:
    """Crashes within ``window_s`` up to transition ``index`` (a crash), counting back to
    the last start after one of ``cleared_by`` (the history a host keeps, SV-9)."""
    at = transitions[index].wall_time
    count = 0
    for t in reversed(transitions[: index + 1]):
        if t.new_state == "starting" and t.old_state in cleared_by:
            break
        if t.new_state == "crashed" and at - t.wall_time <= window_s:
            count += 1
    return count


def restart_problems(
    transitions: Sequence[Transition], policy: Policy, enables: Sequence[float]
) -> list[str]:
    """SV-8, SV-9, SV-1: after each crash the host restarts unless the crashes within the
    window reached the limit, gives up (`failed`, restart_limit) when they did, and a plugin
    leaves `stopped` or `failed` only when enabled.

    Whether disabling clears the failure history the SPEC leaves open, so a crash must lead
    to `failed` when the crashes since the last enable reach the limit, and may lead to it
    when those since the last start from `failed` (or the first) do."""
    problems = []
    window, limit = policy.restart_window_s, policy.restart_limit
    for i, t in enumerate(transitions):
        if t.new_state == "starting" and t.old_state in ENABLED_FROM:
            since = transitions[i - 1].wall_time if i else -math.inf
            if not any(since - CLOCK_SLACK_S <= e <= t.wall_time + CLOCK_SLACK_S for e in enables):
                problems.append(
                    f"transition {i} ({t.old_state or '(none)'} -> starting) came without an "
                    f"EnablePlugin: a plugin leaves {t.old_state or 'loaded'!r} only when "
                    "enabled (SV-1, SV-9)"
                )
        if t.new_state != "crashed" or i + 1 >= len(transitions):
            continue
        after = transitions[i + 1]
        certain = _failures(transitions, i, window - CLOCK_SLACK_S, ENABLED_FROM)
        possible = _failures(transitions, i, window + CLOCK_SLACK_S, ("", "failed"))
        if after.new_state == "restarting" and certain >= limit:
            problems.append(
                f"the crash of transition {i} is failure {certain} within {window:g}s "
                f"(restart_limit {limit}, restart_window {window:g}s): the host must put the "
                "plugin in `failed` (SV-9); it restarted it"
            )
        if after.new_state == "failed":
            if after.error_kind != "restart_limit":
                problems.append(
                    f"after the crash of transition {i} the plugin entered `failed` with error "
                    f"kind {after.error_kind!r}; giving up is reported as 'restart_limit' (SV-9)"
                )
            if possible < limit:
                problems.append(
                    f"the host gave up after the crash of transition {i}, failure {possible} "
                    f"within {window:g}s; with restart_limit {limit} it must restart the "
                    "plugin (SV-8, SV-9)"
                )
    return problems


def _state_at(transitions: Sequence[Transition], wall: float) -> str:
    state = "loaded"
    for t in transitions:
        if t.wall_time > wall:
            break
        state = t.new_state
    return state


def start_problems(transitions: Sequence[Transition], started: Sequence[Observed]) -> list[str]:
    """SV-1: a process starts only while its plugin is `starting`, one per start."""
    spans = [
        (t.wall_time, transitions[i + 1].wall_time if i + 1 < len(transitions) else math.inf, i)
        for i, t in enumerate(transitions)
        if t.new_state == "starting"
    ]
    problems = []
    per_start: dict[int, list[int]] = {}
    for event in started:
        if not any(lo - CLOCK_SLACK_S <= event.wall <= hi + CLOCK_SLACK_S for lo, hi, _ in spans):
            problems.append(
                f"process {event.pid} started when the plugin was "
                f"{_state_at(transitions, event.wall)!r}, not `starting`: processes start only "
                "when the plugin is enabled or restarted (SV-1, SV-9)"
            )
        inside = [i for lo, hi, i in spans if lo <= event.wall <= hi]
        if len(inside) == 1:
            per_start.setdefault(inside[0], []).append(event.pid)
    for index, pids in per_start.items():
        if len(pids) > 1:
            problems.append(
                f"processes {pids} all started during the one start of transition {index}; "
                "a start is one process (SV-1)"
            )
    return problems


def overlapping_changes(events: Sequence[Observed]) -> list[tuple[Observed, Observed]]:
    """Pairs of OnConfigurationChange calls to one process where the second arrived before
    the first had ended, from a fake's call and call_end events."""
    in_progress: dict[int, Observed] = {}
    pairs = []
    for event in sorted(events, key=lambda e: (e.pid, e.seq)):
        if event.get("hook") != "OnConfigurationChange":
            continue
        first = in_progress.get(event.pid)
        if event.event == "call":
            if first is not None:
                pairs.append((first, event))
            in_progress[event.pid] = event
        elif (
            event.event == "call_end"
            and first is not None
            and first.get("call") == event.get("call")
        ):
            del in_progress[event.pid]
    return pairs


def lifecycle_problems(tracked: Tracked, pid: int) -> list[str]:
    """HK-1, LC-1: the active process got Implemented first, then OnConfigurationChange
    with the complete current configuration, then OnActivate."""
    calls = tracked.fake.calls(pid=pid)
    hooks = [str(c.get("hook")) for c in calls]
    if not hooks or hooks[0] != "Implemented" or hooks.count("Implemented") != 1:
        return [
            f"process {pid} is active; its hook calls began {hooks[:4]}, Implemented must come "
            "first and once (HK-1)"
        ]
    lifecycle = [c for c in calls if c.get("hook") != "Implemented"][:2]
    if [c.get("hook") for c in lifecycle] != ["OnConfigurationChange", "OnActivate"]:
        return [
            f"process {pid} is active; after Implemented its hook calls began {hooks[1:4]}; "
            "expected OnConfigurationChange then OnActivate (LC-1)"
        ]
    got = dict(received(lifecycle[0], hooks_pb2.OnConfigurationChangeRequest).configuration)
    ok = acceptable_configurations(tracked.configurations, lifecycle[0].monotonic)
    if got not in [dict(c) for c in ok]:
        return [
            f"process {pid} was activated with the configuration {shown(got)}; the complete "
            f"current configuration was {shown(dict(ok[-1]) if ok else {})} (LC-1, LC-3, HK-14)"
        ]
    return []


# -- the state machine -------------------------------------------------------------------------


class _Moved(Exception):
    """The plugin changed state while it was being checked: look again."""


class HostMachine(RuleBasedStateMachine):
    """One run: a fresh HostTarget, plugins loaded and disturbed, checked after each step.

    ``context`` is set by a subclass made per campaign (``state_machine_property``)."""

    context: ClassVar[HostFuzzContext]
    # None stands for a plugin whose load was skipped after a failure (see `stopped`).
    plugins: Bundle[Tracked | None] = Bundle("plugins")

    def __init__(self) -> None:
        super().__init__()
        self.context.example()
        self.tracked: list[Tracked] = []
        self.injector = SignalInjector()
        self.failure: PropertyFailed | None = None
        self.loads = 0  # load rules run, loaded or not: their precondition
        self.posts: set[bytes] = set()  # every post sent, serialized (HK-14)
        self.serial = itertools.count(1)
        # The first example starts the adapter, which has the suite's start timeout.
        bound = self.context.options.start_timeout_s + 30.0
        self.target: HostTarget = self.run(
            self.context.open_target(), bound, "opening the host under test"
        )

    # -- plumbing -----------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], bound_s: float, what: str) -> T:
        """Run ``coro`` on the campaign's loop; every way it fails becomes PropertyFailed."""
        try:
            return self.context.run(coro, bound_s, what)
        except CaseFailed as exc:
            raise PropertyFailed(str(exc)) from None
        except CaseSkipped as exc:
            raise PropertyNotApplicable(str(exc)) from None
        except grpc.aio.AioRpcError as exc:
            raise PropertyFailed(self._control_failed(what, exc)) from None

    @property
    def stopped(self) -> bool:
        """A check has failed. The remaining steps are still drawn, but do nothing, and the
        failure is raised at teardown: whichever step a replay finds a timing-dependent
        failure at, it draws the same steps, as Hypothesis requires."""
        return self.failure is not None

    def step(self, coro: Coroutine[Any, Any, T], bound_s: float, what: str) -> T | None:
        """Run a step's work; a failure is kept for teardown (None is returned)."""
        try:
            return self.run(coro, bound_s, what)
        except PropertyFailed as exc:
            self.failure = exc
            note(f"failed while {what}; the steps after this one do nothing")
            return None

    def _control_failed(self, what: str, exc: grpc.aio.AioRpcError) -> str:
        text = (
            f"while {what} ({self.target.current_step}), a HostControl call failed with "
            f"{exc.code().name}: {exc.details()}"
        )
        if not self.target.adapter.alive():
            text += "\nthe adapter exited:\n" + self.target.adapter.evidence()
        return text

    def _fail(self, tracked: Tracked, text: str, status: Status | None = None) -> PropertyFailed:
        shown_status = describe_status(status) if status is not None else ""
        return PropertyFailed(f"{text}\n{shown_status}\n{tracked.fake.evidence()}".strip())

    async def _look(self, tracked: Tracked) -> Before:
        status = await tracked.fake.status()
        now = time.monotonic()
        return Before(status, now, status.state == "active" and now >= tracked.disturbed_until)

    async def _before(self, tracked: Tracked) -> Before:
        """The plugin as a call finds it. After failed calls, a single trial call goes
        first: a circuit they opened lets one through when it half-opens (SV-12), and
        that one must not be part of a burst."""
        before = await self._look(tracked)
        if before.clean and tracked.trial_pending:
            await self._trial(tracked, before)
            before = await self._look(tracked)
        return before

    async def _trial(self, tracked: Tracked, before: Before) -> None:
        """An active, undisturbed plugin answers a command exactly."""
        answer = await self._command(tracked, f"/trial {next(self.serial)} {NON_BMP}")
        await self._judge(
            tracked, before, answer, f"a trial ExecuteCommand on {tracked.id!r}", "RR-1"
        )
        tracked.trial_pending = answer.problem is not None

    async def _running(self, tracked: Tracked) -> tuple[Status, Proc, psutil.Process] | None:
        """The plugin's active process, to disturb; None (noted) when it has none."""
        status = await tracked.fake.status()
        procs = processes(tracked.fake)
        pid = status.pid or (procs[-1].pid if procs else 0)
        proc = next((p for p in procs if p.pid == pid), None)
        found = proc.find() if proc is not None else None
        if status.state != "active" or proc is None or found is None:
            note(f"{tracked.id!r} is {status.state} (process {pid or 'none'}): left alone")
            return None
        return status, proc, found

    async def _judge(
        self, tracked: Tracked, before: Before, answer: Answer, what: str, rules: str
    ) -> None:
        """An answer that is not exact fails the example when the plugin was active and
        undisturbed and the host reports no change of state that explains it."""
        if answer.fatal is not None:
            raise self._fail(tracked, f"{what}: {answer.fatal}")
        if answer.problem is None:
            return
        tracked.disturb()
        tracked.trial_pending = True
        if not before.clean:
            if before.state == "active":
                note(f"{what}: {answer.problem} (the plugin was under a fault)")
            return
        moved = await watch_until(tracked.fake, moved_on(before.status), DETECT_S)
        if moved is not None:
            note(f"{what}: {answer.problem} (the plugin then left {before.state})")
            return
        raise self._fail(
            tracked,
            f"{what}: {answer.problem}. The plugin was active, nothing had been done to it, "
            f"and the host reported no change of its state within {DETECT_S:g}s after: the "
            f"answer must be exact ({rules})",
            await tracked.fake.status(),
        )

    def _check_deadline(self, what: str, took: float, deadline: float, rules: str) -> str | None:
        if took <= deadline + SLACK_S:
            return None
        return (
            f"it took {took:.2f}s; with a hook deadline of {deadline:g}s the host must answer "
            f"within it ({rules}; {SLACK_S:g}s allowed for the adapter)"
        )

    # -- calls through the host ---------------------------------------------------------------

    async def _command(self, tracked: Tracked, text: str) -> Answer:
        """ExecuteCommand through the host; the fake answers ``text``, ephemeral (RR-1)."""
        deadline = tracked.policy.hook_timeout_s
        tracked.commands.add(text)
        start = time.monotonic()
        try:
            outcome = await tracked.fake.command(text, timeout_s=deadline + FIREHOOK_GRACE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            return Answer(
                None, f"FireHook did not answer within {deadline + FIREHOOK_GRACE_S:g}s (HK-11)"
            )
        fatal = self._check_deadline("ExecuteCommand", time.monotonic() - start, deadline, "HK-11")
        if outcome.WhichOneof("result") != "response":
            error = outcome.error
            return Answer(f"the host returned the error {describe_error(error)}", fatal, error.kind)
        reply = outcome.response
        if reply.text != text or reply.response_type != "ephemeral":
            return Answer(
                f"the host returned text {shown(reply.text)}, {reply.response_type!r}; the "
                f"fake answers the command it receives, {shown(text)}, 'ephemeral' (RR-1)",
                fatal,
            )
        return Answer(None, fatal)

    async def _echo(self, tracked: Tracked, body: Body) -> Answer:
        """POST /echo through the host's front; it must end, and be exact when healthy."""
        data = body.data()
        http = self.target.http(timeout_s=HTTP_BOUND_S)
        try:
            async with asyncio.timeout(HTTP_BOUND_S):
                response = await http.post(tracked.fake.url("/echo"), content=data)
        except TimeoutError:
            return Answer(
                None,
                f"the exchange did not end within {HTTP_BOUND_S:g}s; whatever befalls the "
                "plugin, the host must end it (SV-5, SE-5, SE-6)",
            )
        except httpx.HTTPError as exc:
            return Answer(f"the exchange broke off: {type(exc).__name__}: {exc}")
        if response.status_code != 200:
            return Answer(
                f"status {response.status_code}: {shown(response.text)}", response=response
            )
        if response.content != data:
            got = hashlib.sha256(response.content).hexdigest()[:16]
            sent = hashlib.sha256(data).hexdigest()[:16]
            return Answer(
                f"{len(response.content)} bytes came back (sha256 {got}...), not the "
                f"{len(data)} sent (sha256 {sent}...) (SE-10, SH-9)",
                response=response,
            )
        return Answer(None, response=response)

    async def _expect_off(
        self, tracked: Tracked, before: Before, answer: Answer, what: str
    ) -> None:
        """A plugin that is stopped or failed throughout: commands fail plugin_unavailable
        (RR-3), HTTP gets 503 with Retry-After (SE-3)."""
        after = await tracked.fake.status()
        if before.state not in ("stopped", "failed") or moved_on(before.status)(after):
            return
        problem = None
        if answer.response is not None:
            retry = answer.response.headers.get("retry-after", "")
            if answer.response.status_code != 503 or not retry.isdigit() or int(retry) < 1:
                problem = (
                    f"the host answered {answer.response.status_code} with Retry-After "
                    f"{retry!r}; for a plugin that is not active it answers 503 with a "
                    "Retry-After of at least 1 s (SE-3)"
                )
        elif answer.error_kind and answer.error_kind != "plugin_unavailable":
            problem = (
                f"the host returned the error kind {answer.error_kind!r}; for a plugin that is "
                "not active it is 'plugin_unavailable' (RR-3)"
            )
        if problem is not None:
            raise self._fail(tracked, f"{what}, with the plugin {before.state}: {problem}", after)

    async def _call(self, tracked: Tracked, call: Call) -> Answer:
        await asyncio.sleep(call.delay_ms / 1000)  # the traffic's timing, not a wait
        if call.body is not None:
            return await self._echo(tracked, call.body)
        if call.configuration is not None:
            return await self._change(tracked, call.configuration)
        if call.post is not None:
            await self._chain(call.post.post())
            return Answer(None)
        return await self._command(tracked, call.command)

    # -- rules: plugins -----------------------------------------------------------------------

    @initialize(target=plugins, setup=plugin_setups())
    def first_plugin(self, setup: PluginSetup) -> Tracked | None:
        self.loads += 1
        return self.step(self._load(setup), RULE_BOUND_S, "loading the first plugin")

    @precondition(lambda self: self.loads < MAX_PLUGINS)
    @rule(target=plugins, setup=plugin_setups())
    def load_plugin(self, setup: PluginSetup) -> Tracked | None:
        # Counted and added to the bundle even when stopped (None): the draws stay the same.
        self.loads += 1
        if self.stopped:
            return None
        return self.step(self._load(setup), RULE_BOUND_S, "loading a plugin")

    async def _load(self, setup: PluginSetup) -> Tracked:
        enabled_at = time.time()
        fake = await self.target.load(
            setup.scenario,
            name=setup.kind.short,
            configuration=setup.configuration,
            wait_active=False,
            **setup.policy.fields(),
        )
        initial = ConfigChange(0.0, 0.0, dict(setup.configuration), True)
        tracked = Tracked(fake, setup, [enabled_at], [initial])
        self.tracked.append(tracked)
        note(f"loaded {tracked.id!r}")
        await self._await_start(tracked, "loaded and enabled")
        return tracked

    async def _await_start(self, tracked: Tracked, what: str) -> None:
        """A flapping plugin may fail for good; the others must become active."""
        if tracked.setup.kind == Kind.FLAPPING:
            await self._settle(tracked)
            return
        status = await watch_until(
            tracked.fake, lambda s: s.state in ("active", "failed", "stopped"), START_BOUND_S
        )
        if status is None or status.state != "active":
            raise self._fail(
                tracked,
                f"the {tracked.setup.kind} plugin {tracked.id!r} was {what}, and did not become "
                f"active within {START_BOUND_S:g}s; it handshakes, reports SERVING and accepts "
                "its activation at once (SV-1, LC-1)",
                status or await tracked.fake.status(),
            )

    @rule(plugin=plugins)
    def disable(self, plugin: Tracked) -> None:
        if self.stopped:
            return
        self.step(self._disable(plugin), DISABLE_BOUND_S + GONE_S + 10, f"disabling {plugin.id!r}")

    async def _disable(self, tracked: Tracked) -> None:
        if not tracked.enabled:
            note(f"{tracked.id!r} is already disabled")
            return
        tracked.enabled = False
        tracked.acted_on()
        try:
            status = await tracked.fake.disable(timeout_s=DISABLE_BOUND_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            raise self._fail(
                tracked,
                f"DisablePlugin did not answer within {DISABLE_BOUND_S:g}s; the stop sequence "
                f"takes at most OnDeactivate's {DEACTIVATE_S:g}s and 3 x {STOP_GRACE_S:g}s (SV-14)",
            ) from None
        tracked.acted_on()  # the stop's transitions are the machine's doing, however long it took
        if status.state != "stopped":
            raise self._fail(
                tracked,
                f"DisablePlugin answered with the plugin {status.state!r}; it answers once the "
                "plugin is stopped (SV-14)",
                status,
            )
        left = await still_there(processes(tracked.fake), GONE_S)
        if left:
            raise self._fail(
                tracked,
                f"DisablePlugin answered `stopped`, and {GONE_S:g}s later these processes of "
                f"the plugin are still there: {', '.join(p.describe() for p in left)}; the stop "
                "sequence ends with no process (SV-14, SV-16, SV-17)",
                status,
            )

    @rule(plugin=plugins)
    def enable(self, plugin: Tracked) -> None:
        if self.stopped:
            return
        self.step(self._enable(plugin), RULE_BOUND_S, f"enabling {plugin.id!r}")

    async def _enable(self, tracked: Tracked) -> None:
        status = await tracked.fake.status()
        if tracked.enabled and status.state != "failed":
            note(f"{tracked.id!r} is enabled and {status.state}: not enabled again")
            return
        tracked.enabled = True
        tracked.enables.append(time.time())
        await tracked.fake.enable()
        await self._await_start(tracked, "enabled again")

    @rule(plugin=plugins, changes=st.lists(configurations(), min_size=1, max_size=2))
    def configure(self, plugin: Tracked, changes: list[Mapping[str, str]]) -> None:
        if self.stopped:
            return
        bound = 2 * len(changes) * plugin.policy.hook_timeout_s + FIREHOOK_GRACE_S + DETECT_S + 10
        self.step(self._configure(plugin, changes), bound, f"configuring {plugin.id!r}")

    async def _configure(self, tracked: Tracked, changes: list[Mapping[str, str]]) -> None:
        """LC-3: each new configuration reaches the active plugin exactly; two sent at once
        reach it one after the other (checked after the step)."""
        before = await self._before(tracked)
        answers = await asyncio.gather(*(self._change(tracked, c, len(changes)) for c in changes))
        got = [
            dict(received(c, hooks_pb2.OnConfigurationChangeRequest).configuration)
            for c in tracked.fake.calls("OnConfigurationChange")
            if c.monotonic >= before.at
        ]
        for configuration, answer in zip(changes, answers, strict=True):
            if (
                answer.problem is None
                and before.state == "active"
                and dict(configuration) not in got
            ):
                answer = Answer(
                    f"the fake received no OnConfigurationChange with {shown(configuration)} "
                    f"(it received {shown(got)}) (LC-3, HK-14)"
                )
            what = f"OnConfigurationChange({shown(configuration)}) on {tracked.id!r}"
            await self._judge(tracked, before, answer, what, "LC-3, HK-14")

    async def _change(
        self, tracked: Tracked, configuration: Mapping[str, str], at_once: int = 1
    ) -> Answer:
        """A configuration change through the host. It may wait for the others sent at once
        and an activation in progress (LC-3: never concurrent), each with its deadline."""
        deadline = (at_once + 1) * tracked.policy.hook_timeout_s
        sent = time.monotonic()
        # Known before it is sent, for a call that arrives meanwhile; completed once answered.
        index = len(tracked.configurations)
        tracked.configurations.append(ConfigChange(sent, math.inf, dict(configuration), False))
        try:
            outcome = await tracked.fake.configure(
                configuration, timeout_s=deadline + FIREHOOK_GRACE_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            return Answer(None, "the configuration change did not end (LC-3, HK-11)")
        done = time.monotonic()
        accepted = not outcome.HasField("error")
        tracked.configurations[index] = ConfigChange(sent, done, dict(configuration), accepted)
        return Answer(
            None if accepted else f"the host returned {describe_error(outcome.error)}",
            self._check_deadline("OnConfigurationChange", done - sent, deadline, "LC-3, HK-11"),
        )

    # -- rules: hooks and HTTP ----------------------------------------------------------------

    @rule(plugin=plugins, command=commands)
    def execute_command(self, plugin: Tracked, command: str) -> None:
        if self.stopped:
            return
        bound = plugin.policy.hook_timeout_s + FIREHOOK_GRACE_S + DETECT_S + 10
        self.step(self._execute(plugin, command), bound, f"ExecuteCommand on {plugin.id!r}")

    async def _execute(self, tracked: Tracked, command: str) -> None:
        before = await self._before(tracked)
        answer = await self._command(tracked, command)
        what = f"ExecuteCommand {shown(command)} on {tracked.id!r}"
        await self._judge(tracked, before, answer, what, "RR-1, HK-14")
        await self._expect_off(tracked, before, answer, what)

    @rule(plugin=plugins, burst=st.lists(bodies, min_size=1, max_size=4))
    def http_echo(self, plugin: Tracked, burst: list[Body]) -> None:
        if self.stopped:
            return
        bound = HTTP_BOUND_S + DETECT_S * len(burst) + 10
        self.step(self._echo_burst(plugin, burst), bound, f"POST /echo to {plugin.id!r}")

    async def _echo_burst(self, tracked: Tracked, burst: list[Body]) -> None:
        """One request, or 2 to 4 at once: each must end, and be exact when healthy."""
        if not self.target.http_base_url:
            note("the host has no HTTP front")
            return
        before = await self._before(tracked)
        answers = await asyncio.gather(*(self._echo(tracked, body) for body in burst))
        together = f" (one of {len(burst)} at once)" if len(burst) > 1 else ""
        for body, answer in zip(burst, answers, strict=True):
            what = f"POST /echo of {body.describe()} to {tracked.id!r}{together}"
            await self._judge(tracked, before, answer, what, "SE-10, SH-9, SV-20")
            await self._expect_off(tracked, before, answer, what)

    def _chain_bound(self) -> float:
        return len(self.tracked) * max(p.policy.hook_timeout_s for p in self.tracked)

    @rule(post=posts)
    def filter_post(self, post: PostDraw) -> None:
        if self.stopped:
            return
        bound = self._chain_bound() + FIREHOOK_GRACE_S + DETECT_S * MAX_PLUGINS + 10
        self.step(self._filter(post.post()), bound, "MessageWillBePosted")

    async def _filter(self, post: hooks_pb2.Post) -> None:
        """FL-1: each active plugin keeps the post as sent, and says so."""
        befores = [(p, await self._before(p)) for p in self.tracked]
        outcome = await self._chain(post)
        for tracked, before in befores:
            if before.state != "active":
                continue
            steps = [s for s in outcome.steps if s.plugin_id == tracked.id]
            problem = None
            if len(steps) != 1 or steps[0].outcome != "keep":
                got = [describe_step(s) for s in steps]
                problem = f"its steps in the chain were {got}; expected one 'keep' (FL-1)"
            else:
                problem = self._post_received(tracked, "MessageWillBePosted", post, before)
            what = f"MessageWillBePosted to {tracked.id!r}"
            await self._judge(tracked, before, Answer(problem), what, "FL-1, HK-14")

    async def _chain(self, post: hooks_pb2.Post) -> control_pb2.FilterOutcome:
        """The post through the filter chain. Every fake keeps it and a failing step passes
        it on (FL-2, FL-5, FL-6), so whatever befalls the plugins the post leaving the chain
        is the one sent; the chain is one call after another, each with its deadline."""
        self.posts.add(_key(post))
        deadline = self._chain_bound()
        start = time.monotonic()
        try:
            outcome = await self.target.filter_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            raise PropertyFailed(
                "MessageWillBePosted through the host did not end (HK-11)"
            ) from None
        late = self._check_deadline("the chain", time.monotonic() - start, deadline, "HK-11, FL-1")
        if late is not None:
            raise PropertyFailed(f"MessageWillBePosted through the chain: {late}")
        if outcome.rejected or outcome.post != post:
            steps = [f"{s.plugin_id}: {describe_step(s)}" for s in outcome.steps]
            raise PropertyFailed(
                f"the filter chain {'rejected' if outcome.rejected else 'changed'} the post "
                f"(by {outcome.rejected_by!r}: {outcome.rejection_reason!r}); every fake keeps "
                "it and a failing step passes it on unchanged (FL-2, FL-5, FL-6)\n"
                f"sent: {shown(post, 400)}\nleft the chain: {shown(outcome.post, 400)}\n"
                f"steps: {steps}"
            )
        return outcome

    @rule(post=posts)
    def notify_post(self, post: PostDraw) -> None:
        if self.stopped:
            return
        bound = self._chain_bound() + FIREHOOK_GRACE_S + DETECT_S * MAX_PLUGINS + 10
        self.step(self._notify(post.post()), bound, "MessageHasBeenPosted")

    async def _notify(self, post: hooks_pb2.Post) -> None:
        """NT-1, NT-3: every active plugin is notified with the post exactly, and the host
        waits for the slowest no longer than the hook deadline."""
        befores = [(p, await self._before(p)) for p in self.tracked]
        self.posts.add(_key(post))
        deadline = max(p.policy.hook_timeout_s for p in self.tracked)
        start = time.monotonic()
        try:
            outcome = await self.target.notify_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            raise PropertyFailed(
                "MessageHasBeenPosted through the host did not end (NT-3)"
            ) from None
        late = self._check_deadline("the notification", time.monotonic() - start, deadline, "NT-3")
        if late is not None:
            raise PropertyFailed(f"MessageHasBeenPosted to {len(befores)} plugins: {late}")
        for tracked, before in befores:
            if before.state != "active":
                continue
            results = [r for r in outcome.results if r.plugin_id == tracked.id]
            if len(results) != 1 or results[0].HasField("error"):
                got = [describe_error(r.error) if r.HasField("error") else "ok" for r in results]
                problem: str | None = f"its results were {got}; expected one, without error (NT-1)"
            else:
                problem = self._post_received(tracked, "MessageHasBeenPosted", post, before)
            what = f"MessageHasBeenPosted to {tracked.id!r}"
            await self._judge(tracked, before, Answer(problem), what, "NT-1, HK-14")

    def _post_received(
        self, tracked: Tracked, hook: str, post: hooks_pb2.Post, before: Before
    ) -> str | None:
        request_type = (
            hooks_pb2.MessageWillBePostedRequest
            if hook == "MessageWillBePosted"
            else hooks_pb2.MessageHasBeenPostedRequest
        )
        got = [
            received(c, request_type).post
            for c in tracked.fake.calls(hook)
            if c.monotonic >= before.at
        ]
        if post in got:
            return None
        return f"the fake received {len(got)} {hook} call(s), none with the post as sent (HK-14)"

    # -- rules: faults --------------------------------------------------------------------------

    @rule(plugin=plugins)
    def kill(self, plugin: Tracked) -> None:
        if self.stopped:
            return
        self.step(self._kill(plugin), EXIT_DETECTION_S + SLACK_S + 10, f"killing {plugin.id!r}")

    async def _kill(self, tracked: Tracked) -> None:
        """SV-3: a process killed is noticed, by watching it, within 10 s."""
        running = await self._running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        killed_at = time.time()
        self.injector.kill(found)
        note(f"killed process {proc.pid} of {tracked.id!r}")
        why = (
            f"process {proc.pid} of {tracked.id!r} was killed (SIGKILL); the host must notice "
            f"its exit and enter `crashed` within {EXIT_DETECTION_S:g}s (SV-3)"
        )
        crash = await self._await_crash(
            tracked, len(status.transitions), EXIT_DETECTION_S + SLACK_S, why
        )
        if crash.error_kind not in RUNNING_CRASH_KINDS:
            raise self._fail(
                tracked,
                f"{why}; it reported the crash as {crash.error_kind!r}, expected one of "
                f"{sorted(RUNNING_CRASH_KINDS)} (SV-2)",
                await tracked.fake.status(),
            )
        if crash.wall_time - killed_at > EXIT_DETECTION_S:
            raise self._fail(
                tracked, f"{why}; it did so {crash.wall_time - killed_at:.2f}s after", None
            )

    async def _await_crash(
        self, tracked: Tracked, after: int, timeout_s: float, why: str
    ) -> Transition:
        def crashed(status: Status) -> bool:
            return any(t.new_state == "crashed" for t in status.transitions[after:])

        status = await watch_until(tracked.fake, crashed, timeout_s)
        if status is None:
            raise self._fail(
                tracked,
                f"{why}; no `crashed` came within {timeout_s:g}s",
                await tracked.fake.status(),
            )
        return next(t for t in status.transitions[after:] if t.new_state == "crashed")

    @rule(plugin=plugins)
    def hang(self, plugin: Tracked) -> None:
        if self.stopped:
            return
        bound = plugin.policy.hang_detection_s + DETECTION_SLACK_S + GONE_S + 10
        self.step(self._hang(plugin), bound, f"hanging {plugin.id!r}")

    async def _hang(self, tracked: Tracked) -> None:
        """SV-7: a process that stops answering (SIGSTOP) fails its health check, and the
        host kills it and enters `crashed` (health_check_failed)."""
        running = await self._running(tracked)
        if running is None:
            return
        status, proc, found = running
        tracked.disturb()
        stopped_at = time.time()
        self.injector.stop(found)
        note(f"stopped process {proc.pid} of {tracked.id!r} (SIGSTOP)")
        # Meanwhile, calls reach the hung process: they must end, the chain failing open.
        post = hooks_pb2.Post(id=f"hang-{proc.pid}", message=f"to a hung plugin {NON_BMP}")
        outcomes = await asyncio.gather(
            self._expect_hang_noticed(tracked, proc, len(status.transitions), stopped_at, True),
            self._command(tracked, f"/hung {proc.pid} {NON_BMP}"),
            self._chain(post),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            if isinstance(outcome, Answer) and outcome.fatal is not None:
                raise self._fail(tracked, f"ExecuteCommand to a hung process: {outcome.fatal}")

    async def _expect_hang_noticed(
        self, tracked: Tracked, proc: Proc, after: int, stopped_at: float, alone: bool
    ) -> None:
        policy = tracked.policy
        bound = policy.hang_detection_s + DETECTION_SLACK_S
        why = (
            f"process {proc.pid} of {tracked.id!r} stopped answering (SIGSTOP); with a health "
            f"check every {policy.health_interval_s:g}s and a {policy.health_timeout_s:g}s "
            "timeout the host must find it failing, kill it and enter `crashed` (SV-7)"
        )
        crash = await self._await_crash(tracked, after, bound, why)
        # Alone, nothing but the health check can end it; in a schedule, a kill may have.
        if alone and crash.error_kind != "health_check_failed":
            raise self._fail(
                tracked,
                f"{why}; it reported the crash as {crash.error_kind!r}, expected "
                "'health_check_failed' (SV-7)",
                await tracked.fake.status(),
            )
        if crash.wall_time - stopped_at > bound:
            raise self._fail(tracked, f"{why}; it did so {crash.wall_time - stopped_at:.2f}s after")
        left = await still_there([proc], GONE_S)
        if left:
            raise self._fail(
                tracked,
                f"{why}; it entered `crashed`, and {GONE_S:g}s later the process is still "
                f"there: {left[0].describe()}; a failing process is killed with SIGKILL (SV-7)",
                await tracked.fake.status(),
            )
        self.injector.forget(proc.pid)

    @rule(plugin=plugins, pause_ms=st.integers(10, 900))
    def stall(self, plugin: Tracked, pause_ms: int) -> None:
        if self.stopped:
            return
        self.step(self._stall(plugin, pause_ms), pause_ms / 1000 + 20, f"stalling {plugin.id!r}")

    async def _stall(self, tracked: Tracked, pause_ms: int) -> None:
        """A process held for a while (SIGSTOP, then SIGCONT): the host may restart it or not,
        and the checks after the step hold either way."""
        running = await self._running(tracked)
        if running is None:
            return
        _, proc, found = running
        tracked.disturb(pause_ms / 1000)
        self.injector.stop(found)
        try:
            await asyncio.sleep(pause_ms / 1000)  # the stall itself
        finally:
            self.injector.resume(found)
        note(f"stalled process {proc.pid} of {tracked.id!r} for {pause_ms} ms")

    @rule(
        schedule=fault_schedules(targets=MAX_PLUGINS), burst=st.lists(calls, min_size=1, max_size=4)
    )
    def fault_schedule(self, schedule: tuple[ScheduledFault, ...], burst: list[Call]) -> None:
        if self.stopped:
            return
        length = sum(f.delay_ms + f.pause_ms for f in schedule) / 1000
        bound = length + 1 + HTTP_BOUND_S + DETECT_S * len(burst) + EXIT_DETECTION_S + GONE_S + 20
        self.step(self._fault_schedule(schedule, burst), bound, "a fault schedule under traffic")

    async def _fault_schedule(
        self, schedule: tuple[ScheduledFault, ...], burst: list[Call]
    ) -> None:
        """Faults dealt on their schedule while a burst of calls runs: every call ends
        within its bound, those to plugins the schedule spares are exact (SV-20), and each
        process left hanging is found out (SV-7)."""
        plugins = list(self.tracked)
        length = sum(f.delay_ms + f.pause_ms for f in schedule) / 1000
        for index in {f.target % len(plugins) for f in schedule}:
            plugins[index].disturb(length)
        befores = {p.id: await self._before(p) for p in plugins}
        hung: list[tuple[Tracked, Proc, int, float]] = []
        dealing = asyncio.ensure_future(self._deal(schedule, plugins, hung))
        try:
            # Every call runs to its end, a failing one too: none is left behind running.
            outcomes = await asyncio.gather(
                *(self._call(plugins[c.target % len(plugins)], c) for c in burst),
                return_exceptions=True,
            )
        finally:
            await dealing
        for call, outcome in zip(burst, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                raise outcome
            tracked = plugins[call.target % len(plugins)]
            what = f"{call.describe()} to {tracked.id!r} during the schedule"
            await self._judge(tracked, befores[tracked.id], outcome, what, "SV-20, RR-1, SE-10")
        for tracked, proc, after, stopped_at in hung:
            await self._expect_hang_noticed(tracked, proc, after, stopped_at, False)

    async def _deal(
        self,
        schedule: tuple[ScheduledFault, ...],
        plugins: list[Tracked],
        hung: list[tuple[Tracked, Proc, int, float]],
    ) -> None:
        for fault in schedule:
            await asyncio.sleep(fault.delay_ms / 1000)  # the schedule's timing, not a wait
            tracked = plugins[fault.target % len(plugins)]
            running = await self._running(tracked)
            if running is None:
                continue
            status, proc, found = running
            if proc.pid in self.injector.stopped and fault.action is not FaultAction.KILL:
                continue  # already hanging: stopping it again, or resuming it, changes nothing
            note(f"{fault.describe()}: process {proc.pid} of {tracked.id!r}")
            if fault.action is FaultAction.KILL:
                self.injector.kill(found)
            elif fault.action is FaultAction.HANG:
                if self.injector.stop(found):
                    hung.append((tracked, proc, len(status.transitions), time.time()))
            else:
                pulses = 1 if fault.action is FaultAction.SLOW else FLAP_PULSES
                await self._pulse(found, fault.pause_ms / 1000, pulses)

    async def _pulse(self, found: psutil.Process, pause_s: float, pulses: int) -> None:
        """Hold the process ``pulses`` times, ``pause_s`` in all, resuming it in between."""
        for n in range(pulses):
            self.injector.stop(found)
            try:
                await asyncio.sleep(pause_s / pulses)  # the stall itself
            finally:
                self.injector.resume(found)
            if n + 1 < pulses:
                await asyncio.sleep(pause_s / pulses)  # running, between two stalls

    # -- what holds after every step ----------------------------------------------------------

    @invariant()
    def host_agrees(self) -> None:
        if self.stopped:
            return
        self.step(self._check_all(), INVARIANT_BOUND_S, "checking every plugin after the step")

    async def _check_all(self) -> None:
        for tracked in self.tracked:
            self._check_delivered(tracked)
            self._check_changes_apart(tracked)
            status = await self._check_plugin(tracked)
            self._check_quiet(tracked, status)
            await self._probe(tracked, status)

    def _check_delivered(self, tracked: Tracked) -> None:
        """HK-14: whatever befalls a plugin, each command, post and configuration it
        receives is one the machine sent, byte for byte (a late one included)."""
        calls = tracked.fake.calls()
        for call in calls[tracked.delivered :]:
            problem = self._undelivered(tracked, call)
            if problem is not None:
                raise self._fail(
                    tracked,
                    f"process {call.pid} received {call.get('hook')} with {problem}, which the "
                    "machine never sent; a host delivers every string exactly (HK-14)",
                )
        tracked.delivered = len(calls)

    def _check_changes_apart(self, tracked: Tracked) -> None:
        """LC-3: a process gets one configuration change at a time. An undisturbed fake
        answers well within the deadline, so a second change that reaches it meanwhile was
        sent while the host still waited for the first."""
        for first, second in overlapping_changes(tracked.fake.events()):
            if not tracked.disturbed_at(second.monotonic):
                raise self._fail(
                    tracked,
                    f"process {second.pid} received OnConfigurationChange (call "
                    f"{second.get('call')}) while call {first.get('call')} was still in "
                    "progress; a plugin's configuration changes are never concurrent (LC-3)",
                )

    def _undelivered(self, tracked: Tracked, call: Observed) -> str | None:
        """What the call carries, when the machine did not send it; else None."""
        hook = call.get("hook")
        if hook == "ExecuteCommand":
            command = received(call, hooks_pb2.ExecuteCommandRequest).command
            sent = sorted(tracked.commands, key=len)
            return (
                None if command in tracked.commands else f"{shown(command)} (sent: {shown(sent)})"
            )
        if hook in ("MessageWillBePosted", "MessageHasBeenPosted"):
            request_type = getattr(hooks_pb2, f"{hook}Request")
            post = received(call, request_type).post
            return None if _key(post) in self.posts else f"the post {shown(post, 300)}"
        if hook == "OnConfigurationChange":
            got = dict(received(call, hooks_pb2.OnConfigurationChangeRequest).configuration)
            known = [dict(c.configuration) for c in tracked.configurations]
            return None if got in known else f"the configuration {shown(got)}"
        return None

    async def _settle(self, tracked: Tracked) -> Status:
        """Wait until the plugin rests: active or failed when enabled, else stopped."""
        states = ON_STATES if tracked.enabled else OFF_STATES
        status = await watch_until(tracked.fake, lambda s: s.state in states, START_BOUND_S)
        if status is None:
            want = " or ".join(states)
            raise self._fail(
                tracked,
                f"the plugin did not come to rest ({want}) within {START_BOUND_S:g}s; with a "
                f"start timeout of {START_TIMEOUT_S:g}s and backoff of at most "
                f"{tracked.policy.backoff_max_s:g}s it must (SV-1, SV-8)",
                await tracked.fake.status(),
            )
        return status

    async def _check_plugin(self, tracked: Tracked) -> Status:
        """The state agrees with the processes, and the transitions with the SPEC."""
        for _ in range(3):
            status = await self._settle(tracked)
            procs, spawned = processes(tracked.fake), grandchildren(tracked.fake)
            latest = await tracked.fake.status()
            if moved_on(status)(latest):
                continue
            try:
                problem = await self._process_problem(tracked, status, procs, spawned)
            except _Moved:
                continue
            if problem is not None:
                raise self._fail(tracked, problem, await tracked.fake.status())
            break
        else:
            note(f"{tracked.id!r} kept changing state: its processes were not checked this step")
        latest = await tracked.fake.status()
        problems = transition_problems(latest)
        problems += restart_problems(latest.transitions, tracked.policy, tracked.enables)
        problems += start_problems(latest.transitions, tracked.fake.events("started"))
        if latest.state == "active" and not moved_on(status)(latest):
            procs = processes(tracked.fake)
            pid = latest.pid or (procs[-1].pid if procs else 0)
            problems += lifecycle_problems(tracked, pid)
        if problems:
            raise self._fail(tracked, "\n".join(problems), latest)
        return latest

    async def _process_problem(
        self, tracked: Tracked, status: Status, procs: list[Proc], spawned: list[Proc]
    ) -> str | None:
        """One live process for an active plugin, the one the host names; none else, and
        nothing left of the others' process groups."""
        current: Proc | None = None
        if status.state == "active":
            pid = status.pid or (procs[-1].pid if procs else 0)
            current = next((p for p in procs if p.pid == pid), None)
            if current is None:
                return (
                    f"the host reports {tracked.id!r} active in process {pid}, but the "
                    f"plugin's processes were {[p.pid for p in procs]}"
                )
            if not runs(current):
                if await watch_until(tracked.fake, moved_on(status), EXIT_DETECTION_S + SLACK_S):
                    raise _Moved
                return (
                    f"the host reports {tracked.id!r} active in process {current.pid}, which is "
                    f"{current.describe()}; the host must notice the exit and enter `crashed` "
                    f"within {EXIT_DETECTION_S:g}s (SV-3)"
                )
        others = [p for p in procs if p is not current]
        others += [g for g in spawned if current is None or g.parent != current.pid]
        left = await still_there(others, GONE_S)
        running = f"process {current.pid}" if current is not None else "no process"
        if not left:
            dirs = await paths_left([p.socket_dir for p in others if p.socket_dir], GONE_S)
            if not dirs:
                return None
            return (
                f"the host reports {tracked.id!r} {status.state}, running {running}; the "
                f"socket directories it made for processes that have exited are still there "
                f"{GONE_S:g}s later: {dirs} (SV-18)"
            )
        return (
            f"the host reports {tracked.id!r} {status.state}, running {running}; {GONE_S:g}s "
            f"later these other processes of the plugin are still there: "
            f"{', '.join(p.describe() for p in left)}; every other process must be gone and "
            "reaped (SV-14, SV-16, SV-17)"
        )

    def _check_quiet(self, tracked: Tracked, status: Status) -> None:
        """SV-20: a plugin the machine left alone does not crash or stop: another plugin's
        faults must not reach it. A failed health check is tolerated (the machine is loaded
        and the health timeout short), and noted."""
        new = list(status.transitions[tracked.seen :])
        tracked.seen = len(status.transitions)
        if tracked.setup.kind == Kind.FLAPPING:
            return
        late = [t for t in new if t.wall_time > tracked.faulted_until]
        health = [t for t in late if t.error_kind == "health_check_failed"]
        if health:
            note(f"{tracked.id!r} failed a health check by itself: {health[0].reason}")
        bad = [
            t
            for t in late
            if (t.new_state == "crashed" and t.error_kind != "health_check_failed")
            or t.new_state == "stopped"
        ]
        if bad:
            moves = ", ".join(f"{t.old_state} -> {t.new_state} [{t.error_kind}]" for t in bad)
            raise self._fail(
                tracked,
                f"nothing was done to {tracked.id!r} ({tracked.setup.kind}), yet the host "
                f"reported {moves}; a crash, hang or restart of another plugin must not change "
                "its state (SV-20)",
                status,
            )

    async def _probe(self, tracked: Tracked, status: Status) -> None:
        """After every step, an active, undisturbed plugin answers a command exactly."""
        if status.state == "active" and time.monotonic() >= tracked.disturbed_until:
            await self._trial(tracked, Before(status, time.monotonic(), True))

    def teardown(self) -> None:
        """Resume whatever is still stopped, then unload everything (leftovers fail)."""
        resumed = self.injector.release_all()
        if resumed:
            note(f"resumed stopped processes {resumed} before unloading")
        try:
            self.run(self.context.close_target(self.target), CLOSE_BOUND_S + 10, "unloading")
        except PropertyFailed as exc:
            if self.failure is None:
                raise
            note(f"unloading after the failure: {exc}")
        if self.failure is not None:
            raise PropertyFailed(str(self.failure)) from None


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


# -- host/launch/malformed-handshake -----------------------------------------------------------

# A line without '|' is skipped as noise (HS-18), and then only the start timeout ends the
# wait: short for those, so that they cost little; a start timeout comes out either way. Any
# other line is refused once printed, and the fake needs time to start and print it.
NOISE_START_TIMEOUT_S = 3.0
REFUSAL_START_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 5.0  # HS-20's default: an unreachable address takes this long
REFUSAL_BOUND_S = REFUSAL_START_TIMEOUT_S + CONNECT_TIMEOUT_S + 15.0
MALFORMED = "handshake_malformed"


def _version_kinds(text: str, accepted: Collection[int], mismatch: str) -> set[str]:
    """A version field: malformed unless ASCII digits; a mismatch when it reads (strictly,
    or as a lenient parser might with a sign or spaces) as a version not accepted."""
    kinds: set[str] = set()
    strict = text.isascii() and text.isdigit()
    if not strict:
        kinds.add(MALFORMED)
    lenient = text.strip()
    if lenient[:1] in "+-":
        lenient = lenient[1:]
    if (
        lenient.isascii()
        and lenient.isdigit()
        and (int(lenient) not in accepted or text[:1] == "-")
    ):
        kinds.add(mismatch)
    return kinds


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _loopback(address: str) -> bool:
    host, _, _ = address.rpartition(":")
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def expected_refusals(line: str, app_versions: Collection[int]) -> frozenset[str]:
    """Every error kind the SPEC allows a host to report for this handshake line; a line
    breaking several rules may be refused for any of them (the SPEC sets no order)."""
    if "|" not in line:
        return frozenset({"start_timeout"})  # HS-18: noise, skipped; nothing else comes
    parts = line.split("|")
    kinds: set[str] = set()
    if len(parts) not in (5, 6):
        kinds.add(MALFORMED)
    kinds |= _version_kinds(parts[0], {1}, "core_version_mismatch")
    if len(parts) > 1:
        kinds |= _version_kinds(parts[1], app_versions, "app_version_mismatch")
    network = parts[2] if len(parts) > 2 else ""
    if len(parts) > 2 and network not in NETWORKS:
        kinds.add("unknown_network")
    if len(parts) > 3:
        address = parts[3]
        if not address or (network == "tcp" and not _loopback(address)):
            kinds.add(MALFORMED)  # HS-20, HS-21
    if len(parts) > 4 and parts[4] != PROTOCOL_GRPC:
        kinds.add("unsupported_protocol")
        if not parts[4]:
            kinds.add(MALFORMED)
    if len(parts) == 6 and parts[5]:
        kinds.add("tls_error")  # TLS-11 (SHOULD); not base64 at all: HS-19
        if not _is_base64(parts[5]):
            kinds.add(MALFORMED)
    if kinds <= {"tls_error"}:
        # Well-formed (a host may ignore field 6, TLS-11 being a SHOULD): the address is
        # made up, so nothing answers there, or not gRPC (a TCP port something else holds).
        kinds |= {"unreachable", "not_serving", "implemented_failed"}
    return frozenset(kinds)


def _quotes(text: str, line: str) -> bool:
    """Whether ``text`` carries ``line`` (HS-22): as is, as a Python repr or a JSON string."""
    return any(
        form in text for form in (line, repr(line), json.dumps(line, ensure_ascii=False)[1:-1])
    )


def _app_versions(fake: FakePlugin) -> set[int]:
    """The versions the host offered the plugin (PLUGIN_PROTOCOL_VERSIONS), by its start."""
    started = fake.events("started")
    env = started[0].get("env", {}) if started else {}
    value = str(env.get("PLUGIN_PROTOCOL_VERSIONS", "1")) if isinstance(env, dict) else "1"
    versions = {int(v) for v in value.split(",") if v.strip().isascii() and v.strip().isdigit()}
    return versions or {1}


async def _refused(target: HostTarget, line: str) -> None:
    fake = await target.load(
        {"handshake": {"line": line}},
        name="hs",
        wait_active=False,
        restart_limit=1,
        start_timeout_s=NOISE_START_TIMEOUT_S if "|" not in line else REFUSAL_START_TIMEOUT_S,
        backoff_base_s=0.05,
        backoff_max_s=0.1,
    )
    status = await watch_until(fake, lambda s: s.state in ("failed", "active"), REFUSAL_BOUND_S)
    if status is None or status.state != "failed":
        shown_status = describe_status(status or await fake.status())
        raise PropertyFailed(
            f"the handshake line {line!r} was not refused: with restart limit 1 the plugin "
            f"must be `failed` within {REFUSAL_BOUND_S:g}s (HS-20, SV-9)\n{shown_status}\n"
            f"{fake.evidence()}"
        )
    crash = next((t for t in status.transitions if t.new_state == "crashed"), None)
    allowed = expected_refusals(line, _app_versions(fake))
    reported = crash.error_kind if crash is not None else "(no crashed transition)"
    if reported not in allowed:
        raise PropertyFailed(
            f"the host refused the handshake line {line!r} with error kind {reported!r}; for "
            f"this line the SPEC allows {sorted(allowed)} (HS-18, HS-20, HS-21, TLS-10, "
            f"TLS-11)\n{describe_status(status)}\n{fake.evidence()}"
        )
    if crash is not None and reported != "start_timeout":
        told = f"{crash.reason}\n{status.last_error}\n{crash.stderr_tail}"
        if not _quotes(told, line):
            raise PropertyFailed(
                f"the refusal of the handshake line {line!r} does not quote it (HS-22)\n"
                f"{describe_status(status)}"
            )
    left = await still_there(processes(fake), GONE_S)
    if left:
        raise PropertyFailed(
            f"the host refused the handshake line {line!r}, and {GONE_S:g}s later the plugin's "
            f"process is still there: {', '.join(p.describe() for p in left)}; a rejected "
            f"plugin's process group is terminated (HS-20, SV-16, SV-17)\n{fake.evidence()}"
        )


async def _check_refusal(ctx: HostFuzzContext, line: str) -> None:
    """One example: a target of its own, the refusal, and nothing left after it."""
    target = await ctx.open_target()
    problem = ""
    try:
        await _refused(target, line)
    except (PropertyFailed, CaseFailed) as exc:
        problem = str(exc)
    finally:
        try:
            await ctx.close_target(target)
        except PropertyFailed as exc:
            problem = f"{problem}\n{exc}".strip()
    if problem:
        raise PropertyFailed(problem)


def _one_line(line: str) -> bool:
    """What a fake can print as one line (its scenario refuses line breaks)."""
    return "\n" not in line and "\r" not in line


def _malformed(ctx: HostFuzzContext) -> HypothesisTest:
    @given(line=malformed_lines().filter(_one_line))
    def malformed_handshake(line: str) -> None:
        ctx.example()
        try:
            ctx.run(_check_refusal(ctx, line), REFUSAL_BOUND_S + CLOSE_BOUND_S, "the refusal")
        except CaseSkipped as exc:
            raise PropertyNotApplicable(str(exc)) from None
        except grpc.aio.AioRpcError as exc:
            raise PropertyFailed(
                f"a HostControl call failed with {exc.code().name}: {exc.details()}"
            ) from None

    return malformed_handshake


MALFORMED_HANDSHAKE = FuzzProperty(
    "launch/malformed-handshake",
    FuzzTarget.HOST,
    "a plugin printing any malformed handshake line is refused with an error kind the SPEC "
    "allows for that line, quoting it, and its process ends; a line without '|' is noise, "
    "and the start times out",
    ("HS-18", "HS-20", "HS-21", "HS-22", "TLS-10", "TLS-11"),
    _malformed,
    scale=0.02,
)

PROPERTIES = (state_machine_property(), MALFORMED_HANDSHAKE)
