"""What the host state machine knows of each plugin, and of each call it made.

A plugin's record says what the machine did to it and when, so that the checks can tell
the host's own doing from the machine's faults (SV-20).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from pluginconf.control import control_pb2
from pluginconf.fuzz.host.bounds import DETECTION_SLACK_S
from pluginconf.fuzz.host.checks import ConfigChange
from pluginconf.fuzz.strategies.host import PluginSetup, Policy
from pluginconf.runner.host.fake_plugin import FakePlugin

Status = control_pb2.PluginStatus


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
