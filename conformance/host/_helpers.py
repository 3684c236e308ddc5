"""What several host cases do alike: posts, outcomes, and reading what the fakes saw."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from pluginconf.control import control_pb2
from pluginconf.runner import expect, fail
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error, describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.runner.model import CaseFailed
from pluginconf.v1 import hooks_pb2

NON_BMP = "🧩𝄞𠀋"  # outside the Basic Multilingual Plane (4 bytes each in UTF-8)


def make_post(message: str = "hello", **fields: Any) -> hooks_pb2.Post:
    base: dict[str, Any] = {"id": "post-1", "channel_id": "c1", "user_id": "u1"}
    base.update(fields)
    return hooks_pb2.Post(message=message, **base)


def command_answer(
    outcome: control_pb2.CommandOutcome, plugin: FakePlugin
) -> hooks_pb2.ExecuteCommandResponse:
    """The plugin's answer the host returned; fails the case when the host returned an error."""
    if outcome.WhichOneof("result") != "response":
        shown = describe_error(outcome.error) if outcome.HasField("error") else "nothing"
        fail(
            f"the host returned {shown} for ExecuteCommand on {plugin.plugin_id!r}, expected "
            f"the plugin's answer\n{plugin.evidence()}"
        )
    return outcome.response


def command_error(outcome: control_pb2.CommandOutcome, plugin: FakePlugin) -> control_pb2.HostError:
    """The error the host returned; fails the case when it returned an answer instead."""
    if outcome.WhichOneof("result") != "error":
        fail(
            f"the host returned an answer ({outcome.response!r}) for ExecuteCommand on "
            f"{plugin.plugin_id!r}, expected an error\n{plugin.evidence()}"
        )
    return outcome.error


def expect_error_kind(
    outcome: control_pb2.CommandOutcome, kind: str, plugin: FakePlugin, requirement: str
) -> control_pb2.HostError:
    error = command_error(outcome, plugin)
    expect(
        error.kind == kind,
        f"the host reported the error kind {error.kind!r} ({error.message}); expected "
        f"{kind!r} ({requirement})\n{plugin.evidence()}",
    )
    return error


def expect_crash_kind(
    status: control_pb2.PluginStatus, kind: str, requirement: str
) -> control_pb2.Transition:
    """The first `crashed` transition, which must carry the error kind ``kind``; a failure
    breaks ``requirement`` (one the case cites)."""
    crashed = crash_transition(status)
    if crashed is None:
        fail(
            f"the host reported no `crashed` transition ({requirement})\n{describe_status(status)}",
            requirement=requirement,
        )
    expect(
        crashed.error_kind == kind,
        f"the host reported the error kind {crashed.error_kind!r}; expected {kind!r} "
        f"({requirement})\n{describe_status(status)}",
        requirement=requirement,
    )
    return crashed


def crash_transition(
    status: control_pb2.PluginStatus, after: int = 0
) -> control_pb2.Transition | None:
    """The first transition into `crashed` from index ``after`` on."""
    return next((t for t in status.transitions[after:] if t.new_state == "crashed"), None)


def new_seed() -> int:
    return random.SystemRandom().randrange(1 << 32)


@contextlib.contextmanager
def seeded(t: HostTarget, seed: int) -> Iterator[random.Random]:
    """A generator for the case's random choices; a failure names the seed, to replay it."""
    t.step(f"starting (random seed {seed})")
    try:
        yield random.Random(seed)
    except CaseFailed as exc:
        raise CaseFailed(f"{exc}\n(random seed {seed})", exc.requirements) from None
    except grpc.aio.AioRpcError as exc:
        fail(
            f"while {t.current_step}: the call failed with {exc.code().name}: {exc.details()}"
            f"\n(random seed {seed})"
        )


def socket_dir_of(p: FakePlugin, pid: int) -> str:
    """The PLUGIN_UNIX_SOCKET_DIR the host gave process ``pid`` ("" when none)."""
    started = p.events("started", pid)
    env = started[0].get("env", {}) if started else {}
    return str(env.get("PLUGIN_UNIX_SOCKET_DIR", "")) if isinstance(env, dict) else ""


async def gone_path(path: str, timeout_s: float) -> bool:
    """Wait (polling: a removal has no event) until ``path`` does not exist."""
    deadline = time.monotonic() + timeout_s
    while os.path.lexists(path):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def kill_left(pids: Iterable[int]) -> None:
    """SIGKILL processes a case found left behind (and reported): the check after the case
    then does not report them a second time."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
