"""The restart policy of one plugin (SV-8, SV-9): backoff, giving up, starting afresh.

The n-th consecutive failure waits a random delay in [0, min(backoff_max, backoff_base *
2**(n-1))]; a plugin that stayed active for stable_after_s counts from 1 again. restart_limit
failures within restart_window_s give the plugin up; enabling it again clears its history.
"""

from __future__ import annotations

import random
from collections import deque

from pluginconf.host.supervision.clock import Clock, SystemClock
from pluginconf.host.supervision.config import SupervisorConfig


class RestartPolicy:
    def __init__(
        self,
        config: SupervisorConfig,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        # Monotonic times of the failures within the restart window, oldest first.
        self.failure_times: deque[float] = deque()
        # Failures since the plugin last stayed active for stable_after_s.
        self.consecutive = 0

    def record_failure(self, active_for_s: float) -> None:
        """A crash after ``active_for_s`` seconds active (0: it failed to start)."""
        if active_for_s >= self.config.stable_after_s:
            self.consecutive = 0
        self.consecutive += 1
        now = self.clock.monotonic()
        self.failure_times.append(now)
        while self.failure_times and now - self.failure_times[0] > self.config.restart_window_s:
            self.failure_times.popleft()

    def gives_up(self) -> bool:
        """Whether the failures within the window reached the restart limit (SV-9)."""
        return len(self.failure_times) >= self.config.restart_limit

    def give_up_reason(self, last: str) -> str:
        return (
            f"restart_limit: {len(self.failure_times)} failures within "
            f"{self.config.restart_window_s:g}s; last: {last}"
        )

    def backoff_delay(self) -> float:
        """The wait before the next restart, in seconds (SV-8)."""
        ceiling = min(
            self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (self.consecutive - 1)
        )
        return self._rng.uniform(0.0, ceiling)

    def clear(self) -> None:
        """Forget every failure: the plugin is enabled again (SV-9)."""
        self.failure_times.clear()
        self.consecutive = 0
