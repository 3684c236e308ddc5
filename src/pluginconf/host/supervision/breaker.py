"""A per-plugin circuit breaker (SPEC SV-11..SV-13).

States: closed -> open (after `threshold` consecutive failures) -> half-open (after the
cooldown, exactly one trial call) -> closed (trial succeeded) or open again (trial failed).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self,
        threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.state = CircuitState.CLOSED

    def allow(self) -> bool:
        """Whether a call may be sent now. In half-open, only one trial at a time."""
        if self.state is CircuitState.OPEN:
            if self._clock() - self._opened_at < self._cooldown:
                return False
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN:
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
        return True

    def open_for_s(self) -> float:
        """Seconds until an open circuit half-opens; 0 when not open. Changes nothing."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return self.retry_after_s()

    def retry_after_s(self) -> float:
        return max(0.0, self._cooldown - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        self._failures = 0
        self._trial_in_flight = False
        self.state = CircuitState.CLOSED

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self.state is CircuitState.HALF_OPEN or self._failures >= self._threshold:
            self.state = CircuitState.OPEN
            self._opened_at = self._clock()

    def release(self) -> None:
        """A call that was allowed ended without a verdict (cancelled by our own caller)."""
        self._trial_in_flight = False
