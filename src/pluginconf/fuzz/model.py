"""What a fuzz property is, and what running one comes to.

A property is data, like a conformance case: a stable id, the target it applies to, the SPEC
requirements it checks, and a builder that, given the running target, makes a Hypothesis test.
The campaign (campaign.py) applies the settings, seed and database and runs it. A property
proves a failure by raising :class:`PropertyFailed` with the evidence; Hypothesis then shrinks
the example that raised it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pluginconf.runner.model import Profile

# A Hypothesis test: decorated with @given (or a state machine's test), called with no args.
HypothesisTest = Callable[[], None]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)+$")


class FuzzTarget(enum.StrEnum):
    PLUGIN = "plugin"
    HOST = "host"


class PropertyFailed(AssertionError):
    """The target broke the property for the example being run; the message is the evidence.

    An AssertionError, so that Hypothesis treats it as a test failure and shrinks it."""


@dataclass(frozen=True)
class FuzzProperty:
    id: str  # "serve-http/echo-roundtrip"; reports prefix the target
    target: FuzzTarget
    summary: str
    requirements: tuple[str, ...]
    build: Callable[[Any], HypothesisTest]  # given the target's context
    profile: Profile = Profile.HOOKS  # plugin properties: the least profile they need
    # The share of --examples this property runs: a property that starts processes or drives
    # a host through a lifecycle costs far more per example than an echo.
    scale: float = 1.0
    # Hypothesis settings this property needs beyond the campaign's (stateful_step_count...).
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"property id {self.id!r} is not lower-case words joined by '/'")

    @property
    def full_id(self) -> str:
        return f"{self.target.value}/{self.id}"

    def examples(self, requested: int) -> int:
        return max(1, round(requested * self.scale))


class PropertyNotApplicable(Exception):
    """The property does not apply to this target (say, a hook it does not implement)."""
