"""The circuit breaker as the SPEC states it (SV-11, SV-12, SE-4), as the machine sees it.

The machine knows when it sent each call and when the answer came, not when the host
counted it: the moment the circuit opened lies between the two. The model keeps that
interval, and says what each new call may find: closed, open, or either (at the edge of
the cooldown). Its state belongs to one process; a new process starts without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class BreakerModel:
    threshold: int
    cooldown_s: float
    failures: int = 0  # consecutive failures counted since the last success
    opened: tuple[float, float] | None = None  # (earliest, latest) moment it opened

    def success(self) -> None:
        """A call that succeeded (or answered an AppError) closes the circuit (SV-11)."""
        self.failures = 0
        self.opened = None

    def failure(self, not_before: float, answered: float) -> None:
        """A call that reached the plugin and failed, not before ``not_before`` (a timeout:
        its deadline after it was sent): the threshold-th, or a failed trial, opens the
        circuit for a new cooldown (SV-11, SV-12)."""
        self.failures += 1
        if self.failures >= self.threshold or self.opened is not None:
            self.opened = (min(not_before, answered), answered)

    def surely_open(self, at: float) -> bool:
        """A call sent at ``at`` must fail with circuit_open without being sent (SV-11)."""
        return self.opened is not None and at < self.opened[0] + self.cooldown_s

    def surely_half_open(self, at: float) -> bool:
        """The cooldown has passed for sure: exactly one trial goes through (SV-12)."""
        return self.opened is not None and at > self.opened[1] + self.cooldown_s

    def half_opens_by(self) -> float:
        assert self.opened is not None
        return self.opened[1] + self.cooldown_s

    def retry_after(self, sent: float, answered: float) -> range:
        """The Retry-After values (whole seconds until it half-opens, rounded up) a 503
        answered between ``sent`` and ``answered`` may carry (SE-4)."""
        assert self.opened is not None
        low = self.opened[0] + self.cooldown_s - answered
        high = self.opened[1] + self.cooldown_s - sent
        return range(max(1, math.ceil(low)), max(1, math.ceil(high)) + 1)
