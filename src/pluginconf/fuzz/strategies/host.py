"""What the host state machine draws: plugin setups and policies, commands, bodies, posts
and calls.

Each draw is a few plain fields, printed on one line, so that a shrunk failure reads as a
short list of steps.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hypothesis import strategies as st

from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.fuzz.host.bounds import (
    HEALTH_INTERVAL_S,
    HEALTH_TIMEOUT_S,
    LONG_HEALTH_INTERVAL_S,
    MAX_BODY,
    MAX_PLUGINS,
    START_TIMEOUT_S,
    STOP_GRACE_S,
)
from pluginconf.fuzz.strategies.http import body_sizes
from pluginconf.protocol.hooks import HookName
from pluginconf.v1 import hooks_pb2

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
    # ExecuteCommand and MessageHasBeenPosted never answer: every such call fails at its
    # deadline, or at once through an open circuit (HK-11, SV-11, SV-12, NT-2).
    HANGING = "hanging"

    @property
    def short(self) -> str:
        """The plugin id's prefix."""
        return self.value.split("-")[0][:4]


HUNG_HOOKS: tuple[HookName, ...] = ("ExecuteCommand", "MessageHasBeenPosted")


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
    scenario: ScenarioSpec
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
    scenario: ScenarioSpec = {}
    if kind == Kind.SLOW_HOOKS:
        scenario["hook_delay_ms"] = draw(st.integers(1, 300))
    elif kind == Kind.FLAPPING:
        scenario["health"] = {"flap_every_s": draw(st.sampled_from([1.0, 1.5, 2.5]))}
    elif kind == Kind.HANGING:
        scenario["hang"] = {"hook": list(HUNG_HOOKS)}
    if draw(st.booleans()):
        # A `sleep` in the plugin's process group that only a group kill ends (SV-16).
        scenario["spawn_grandchild"] = {"seconds": 120}
    # A hung hook costs its deadline: short enough to keep the breaker's rounds quick, long
    # enough to tell a host that waits for it from one that does not (NT-2, SV-5).
    deadlines = [1.5] if kind == Kind.HANGING else [1.0, 1.5, 2.0]
    policy = Policy(
        hook_timeout_s=draw(st.sampled_from(deadlines)),
        restart_limit=draw(st.integers(2, 5)),
        restart_window_s=float(draw(st.integers(1, 5))),
        breaker_cooldown_s=draw(st.sampled_from([0.5, 1.0])),
        # A long interval leaves an exit to the host's watch of the process alone (SV-4).
        health_interval_s=draw(st.sampled_from([HEALTH_INTERVAL_S, LONG_HEALTH_INTERVAL_S])),
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


def shown(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
