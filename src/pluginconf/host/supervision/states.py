"""SV-1's plugin states and the only transitions between them, and the event of each (SV-2).

SV-1's table (docs/SPEC.md §17):

  (none), stopped --enable--> starting
  starting --handshake, SERVING, Implemented, activation ok--> active
  starting --start failure--> crashed          starting --activation AppError--> failed
  active --unexpected exit or failed health check--> crashed
  crashed --restart allowed--> restarting      crashed --restart limit--> failed
  restarting --backoff elapsed--> starting
  starting, active --stop sequence done--> stopped
  crashed, restarting, failed --disable--> stopped
  failed --enable--> starting
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PluginState(enum.StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


# SV-1's table: the only (old, new) transitions a host may report ("" is none: the first).
TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "starting"), ("stopped", "starting"), ("failed", "starting"),
        ("starting", "active"), ("starting", "crashed"), ("starting", "failed"),
        ("active", "crashed"), ("crashed", "restarting"), ("crashed", "failed"),
        ("restarting", "starting"), ("starting", "stopped"), ("active", "stopped"),
        ("crashed", "stopped"), ("restarting", "stopped"), ("failed", "stopped"),
    }
)  # fmt: skip


def transition_allowed(old: PluginState | None, new: PluginState) -> bool:
    """Whether SV-1's table has ``old -> new`` (None: the plugin had no state yet)."""
    return ("" if old is None else old.value, new.value) in TRANSITIONS


@dataclass(frozen=True)
class StateEvent:
    plugin_id: str
    old: PluginState | None
    new: PluginState
    at: float  # wall clock, seconds since the epoch
    reason: str = ""
    error_kind: str = ""
    exit_status: int | None = None
    stderr_tail: str = ""
