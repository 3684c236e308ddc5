"""NT-2 for the host state machine: while a plugin hangs on MessageHasBeenPosted, each other
active plugin receives the post within 1 s of it being sent. Judged against the same-run
yardstick of a call, and measured again, with new posts, before it fails.
"""

from __future__ import annotations

import time

from hypothesis import note

from pluginconf.fuzz.host.bounds import FAN_OUT_S, FIREHOOK_GRACE_S, NON_BMP
from pluginconf.fuzz.host.calls import answered
from pluginconf.fuzz.host.checks import post_key
from pluginconf.fuzz.host.driver import HostDriver
from pluginconf.fuzz.host.tracked import Tracked
from pluginconf.fuzz.model import PropertyFailed
from pluginconf.fuzz.strategies.host import Kind
from pluginconf.runner.host.observer import received
from pluginconf.runner.timing import Yardstick, judge_time
from pluginconf.v1 import hooks_pb2


class FanOut:
    """Notifications past a hung plugin."""

    def __init__(self, driver: HostDriver) -> None:
        self.driver = driver
        self.calls = driver.calls

    async def parties(self) -> tuple[list[Tracked], list[Tracked]]:
        """The active plugins that hang on notifications, and the other active ones."""
        hung: list[Tracked] = []
        others: list[Tracked] = []
        for tracked in self.driver.tracked:
            if (await tracked.fake.status()).state == "active":
                (hung if tracked.setup.kind == Kind.HANGING else others).append(tracked)
        return hung, others

    @staticmethod
    def delay(post: hooks_pb2.Post, sent: float, others: list[Tracked]) -> float | None:
        """How long after ``sent`` the last of ``others`` received ``post``; None when one
        did not (an open circuit, a crash: the other checks judge that)."""
        delays = []
        for tracked in others:
            calls = [
                c
                for c in tracked.fake.calls("MessageHasBeenPosted")
                if received(c, hooks_pb2.MessageHasBeenPostedRequest).post == post
            ]
            if not calls:
                return None
            delays.append(calls[0].monotonic - sent)
        return max(delays, default=None)

    async def notify_once(self, hung: list[Tracked], others: list[Tracked]) -> float | None:
        post = hooks_pb2.Post(id=f"nt2-{next(self.calls.serial)}", message=f"past a hung {NON_BMP}")
        self.calls.posts.add(post_key(post))
        deadline = max(p.policy.hook_timeout_s for p in self.driver.tracked)
        sent = time.monotonic()
        outcome = await answered(
            self.driver.target.notify_post(post, timeout_s=deadline + FIREHOOK_GRACE_S)
        )
        for tracked in hung:
            tracked.disturb()  # a failure: its circuit may open
        if outcome is None:
            raise PropertyFailed("MessageHasBeenPosted through the host did not end (NT-3)")
        return self.delay(post, sent, others)

    async def judge(self, first: float | None, hung: list[Tracked], others: list[Tracked]) -> None:
        """NT-2, given a first measurement (None: nothing to judge)."""
        if not hung or not others or first is None or first <= FAN_OUT_S:
            return
        note(f"the notification reached the last other plugin {first:.2f}s after it was sent")
        verdict = await judge_time(
            FAN_OUT_S,
            lambda: self.notify_once(hung, others),
            Yardstick.CALL,
            f"MessageHasBeenPosted reaching {[t.id for t in others]} while "
            f"{[t.id for t in hung]} hung on it",
            seen=[first],
        )
        if not verdict.met:
            raise PropertyFailed(
                f"{verdict.evidence()}; while one plugin hangs, each other plugin receives "
                "its notification within 1 s of the post (NT-2: the host notifies them "
                "concurrently)"
            )
