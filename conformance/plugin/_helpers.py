"""What several plugin cases do alike: reading raw output, calling hooks, naming outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import psutil
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2_grpc

from pluginconf.goplugin import grpc_broker_pb2
from pluginconf.host.client import health_problem
from pluginconf.host.launcher import LaunchedPlugin
from pluginconf.protocol.constants import GRPC_MAX_MESSAGE_BYTES
from pluginconf.protocol.handshake import HandshakeLine
from pluginconf.reference.generator import BLOCK_BYTES, iter_bytes
from pluginconf.runner import expect, fail
from pluginconf.runner.plugin.fresh import FreshPlugin
from pluginconf.runner.plugin.http import HTTPResponse, exchange
from pluginconf.runner.timing import ATTEMPTS, TimeVerdict, Yardstick, judge_time
from pluginconf.v1 import hooks_pb2, hooks_pb2_grpc

# HK-8: a non-empty lower_snake_case code.
APP_ERROR_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
NON_BMP = "🧩𝄞𠀋"  # outside the Basic Multilingual Plane (4 bytes each in UTF-8)


def handshake_bytes(launched: LaunchedPlugin) -> bytes:
    """The handshake line exactly as written, terminator included."""
    raw = bytes(launched.stdout_before_handshake)
    lines = raw.splitlines(keepends=True)
    return lines[-1] if lines else b""


def bytes_before_handshake(launched: LaunchedPlugin) -> bytes:
    raw = bytes(launched.stdout_before_handshake)
    return raw[: len(raw) - len(handshake_bytes(launched))]


async def read_available(stream: asyncio.StreamReader | None, timeout_s: float = 0.5) -> bytes:
    """What is in ``stream`` now or arrives within ``timeout_s``, up to EOF."""
    if stream is None:
        return b""
    data = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await stream.read(65536):
                data += chunk
    except TimeoutError:
        pass
    return bytes(data)


# How long a case waits for a process to exit at all: a deadlock guard, never a verdict by
# itself (SPEC bounds are judged with judge_time).
EXIT_GUARD_S = 10.0
# How long a process that must refuse to start, but printed a handshake, gets to exit anyway.
_SERVING_GRACE_S = 2.0


@dataclass
class Refusal:
    """How a process that must refuse to start ended."""

    exited: bool
    status: int | None
    stdout: bytes
    stderr: str
    sockets: list[str]  # unix sockets found in its socket and temporary directories
    took_s: float | None  # from its start to its exit

    def problems(self, status: int | None) -> list[str]:
        """What it did wrong: still running, another exit status (``status``, or None for
        any but 0), output on stdout, a socket, nothing on stderr."""
        if not self.exited and b"|" in self.stdout:
            return [
                f"it served instead: it wrote its handshake {show(self.stdout)} and had not "
                f"exited {_SERVING_GRACE_S:g} s later"
            ]
        if not self.exited:
            return [
                f"it was still running {EXIT_GUARD_S:g} s after it started; stdout: "
                f"{show(self.stdout)}"
            ]
        problems = []
        if status is not None and self.status != status:
            problems.append(f"exit status {self.status}, expected {status}")
        if status is None and self.status == 0:
            problems.append("exit status 0, expected a failure")
        if self.stdout:
            problems.append(f"it wrote to stdout: {show(self.stdout)}")
        if self.sockets:
            problems.append(f"it listened: it left the socket(s) {', '.join(self.sockets)}")
        if not self.stderr.strip():
            problems.append("it wrote nothing on stderr")
        return problems


async def announce(
    stream: Any,
    info: grpc_broker_pb2.ConnInfo,
    *,
    why: str,
    requirement: str,
    unserved: str | None = None,
) -> None:
    """Write ``info`` on a broker stream; fail with ``requirement`` if the plugin has ended it
    (with ``unserved``, when given, if it never served the stream). Which error grpc raises
    on such a write depends on timing, so the call's status decides."""
    try:
        await stream.write(info)
    except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
        # grpc raises InvalidStateError for any call already finished, whatever its status:
        # the status says how it ended.
        code = await asyncio.wait_for(stream.code(), EXIT_GUARD_S)  # done: a deadlock guard
        if code == grpc.StatusCode.OK:
            fail(f"the plugin ended the broker stream {why}", requirement=requirement)
        is_unserved = code == grpc.StatusCode.UNIMPLEMENTED
        fail(
            f"the broker stream failed {why}: {code.name}: {await stream.details()}",
            requirement=unserved if is_unserved and unserved else requirement,
        )


def unix_sockets_in(*directories: str) -> list[str]:
    found = []
    for directory in directories:
        for root, _, files in os.walk(directory):
            for name in files:
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        found.append(path)
    return found


async def _served(fresh: FreshPlugin) -> bytes:
    """The first stdout line of a process that must refuse to start, once it has written a
    handshake-like line (it serves); b"" when stdout ends first."""
    stdout = fresh.launched.process.stdout
    if stdout is None:
        return b""
    line = await stdout.readline()
    while line and b"|" not in line:
        line += await stdout.readline()
    return line


async def refusal(fresh: FreshPlugin) -> Refusal:
    """Wait (bounded by EXIT_GUARD_S) for a process that must refuse to start to exit, and
    gather what it did. One that prints a handshake serves instead of refusing: it is given
    a short while to exit all the same, not the whole guard."""
    exiting = asyncio.ensure_future(fresh.wait_exit(EXIT_GUARD_S))
    serving = asyncio.ensure_future(_served(fresh))
    await asyncio.wait({exiting, serving}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done() and serving.result() and not exiting.done():
        await asyncio.wait({exiting}, timeout=_SERVING_GRACE_S)
    elif not exiting.done():
        await exiting  # stdout ended: the process is exiting, or closed it (bounded)
    exited = exiting.result() if exiting.done() else False
    if not exiting.done():
        exiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await exiting
    took = time.monotonic() - fresh.launched.spawned_at if exited else None
    first = serving.result() if serving.done() else b""
    if not serving.done():
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    stdout = first + await read_available(fresh.launched.process.stdout, 0.5)
    await fresh.launched.wait_drained(1.0)
    sockets = unix_sockets_in(fresh.launched.socket_dir, fresh.tmpdir) if exited else []
    return Refusal(exited, fresh.exit_status, stdout, fresh.stderr_text(), sockets, took)


async def refusal_problems(fresh: FreshPlugin, status: int | None) -> list[str]:
    return (await refusal(fresh)).problems(status)


async def judge_bound(
    bound_s: float,
    measure: Callable[[], Awaitable[float | None]],
    yardstick: Yardstick,
    what: str,
) -> TimeVerdict:
    """judge_time, with one difference: an event that did not happen at all within the
    measurement's generous guard is not measured again (no timing accident makes a process
    miss a bound several times over, and each attempt would cost the guard again)."""
    first = await measure()
    attempts = 1 if first is None else ATTEMPTS
    return await judge_time(bound_s, measure, yardstick, what, seen=[first], attempts=attempts)


async def accepts_connections(handshake: HandshakeLine, timeout_s: float = 10.0) -> bool:
    """Whether a plain connection to the handshake's address opens (for plugins the suite
    does not call)."""
    try:
        async with asyncio.timeout(timeout_s):
            if handshake.network == "unix":
                _, writer = await asyncio.open_unix_connection(handshake.address)
            else:
                host, _, port = handshake.address.rpartition(":")
                _, writer = await asyncio.open_connection(host, int(port))
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def expect_serving(
    health: health_pb2_grpc.HealthStub, when: str, timeout_s: float = 10.0
) -> None:
    """Fail the case unless a health check of "plugin" answers SERVING within ``timeout_s``."""
    problem = await health_problem(health, timeout_s)
    expect(problem is None, f"{when}: {problem}")


async def echo_generated(
    hooks: hooks_pb2_grpc.HooksAsyncStub,
    n: int,
    seed: int,
    piece: int = BLOCK_BYTES,
    timeout_s: float = 60.0,
) -> HTTPResponse:
    """POST the generator's first ``n`` bytes for ``seed`` to /echo, in request frames of
    ``piece`` bytes, comparing the echo with them as it arrives (RB-2)."""
    return await exchange(
        hooks,
        "POST",
        "/echo",
        body=iter_bytes(n, seed=seed, piece=piece),
        content_length=n,
        expected_body=iter_bytes(n, seed=seed),
        keep_body=False,
        timeout_s=timeout_s,
    )


def show(data: bytes | str, limit: int = 200) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class HookOutcome:
    """How one unary hook call ended."""

    hook: str
    response: Message | None = None
    code: grpc.StatusCode | None = None
    details: str = ""

    @property
    def ok(self) -> bool:
        return self.response is not None

    def app_error(self) -> tuple[str, str] | None:
        if self.response is None or "error" not in self.response.DESCRIPTOR.fields_by_name:
            return None
        if not self.response.HasField("error"):
            return None
        error = getattr(self.response, "error")  # noqa: B009  # a protobuf field
        return error.code, error.message

    def describe(self) -> str:
        if self.response is None:
            return f"{self.hook}: {self.code.name if self.code else '?'}: {self.details}"
        error = self.app_error()
        if error:
            return f"{self.hook}: OK with AppError {error[0]!r}: {error[1]}"
        return f"{self.hook}: OK"


async def call_hook(
    stub: hooks_pb2_grpc.HooksAsyncStub, hook: str, request: Message, timeout_s: float = 30.0
) -> HookOutcome:
    try:
        response = await getattr(stub, hook)(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as exc:
        return HookOutcome(hook, None, exc.code(), exc.details() or "")
    return HookOutcome(hook, response)


def hook_problem(outcome: HookOutcome) -> str | None:
    """What HK-8 and HK-10 forbid in a hook's answer: statuses other than OK (or INTERNAL for
    an unexpected failure), and AppError codes that are not lower_snake_case."""
    if outcome.response is None:
        if outcome.code == grpc.StatusCode.INTERNAL:
            return None  # HK-10 allows INTERNAL for an unexpected failure
        return f"{outcome.describe()} (a hook answers OK, with AppError for failures: HK-8)"
    error = outcome.app_error()
    if error is not None and not APP_ERROR_CODE.match(error[0]):
        return f"{outcome.describe()}: the code is not lower_snake_case (HK-8)"
    return None


# -- requests ---------------------------------------------------------------------------


def post(**fields: Any) -> hooks_pb2.Post:
    return hooks_pb2.Post(**fields)


RequestFactory = Callable[[str], Message]


def requests_of(kind: str) -> dict[str, Message]:
    """One request per unary hook but the lifecycle ones: "empty", "unicode" or "large"."""
    if kind == "empty":
        return {
            "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(),
            "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(),
            "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(),
            "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(),
        }
    if kind == "unicode":
        text = f"é ü ß ∑ {NON_BMP} \u200b\u2028 \u0000 end"
        p = post(
            id=f"id-{NON_BMP}",
            channel_id=f"ch-{NON_BMP}",
            user_id=f"u-{NON_BMP}",
            message=text,
            props={NON_BMP: text, "": "", "key": ""},
            create_at=-(2**63),
        )
        return {
            "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(
                configuration={NON_BMP: text, "": "", "ascii": "plain"}
            ),
            "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(post=p),
            "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(post=p),
            "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(
                command=f"/{NON_BMP} {text}", user_id=NON_BMP, channel_id=NON_BMP
            ),
        }
    if kind == "large":
        # Each request just under the 4 MiB limit: a large string, or many map entries.
        big = large_text(GRPC_MAX_MESSAGE_BYTES - 4096)
        many = {f"key-{i:06d}": f"value-{i}" for i in range(40000)}
        return {
            "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(configuration=many),
            "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(
                post=post(id="large", message=big)
            ),
            "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(
                post=post(id="large", message=big)
            ),
            "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(command="/large " + big),
        }
    raise ValueError(kind)


def large_text(n_bytes: int) -> str:
    """Text of exactly ``n_bytes`` UTF-8 bytes, mixing 1-, 2-, 3- and 4-byte characters."""
    unit = f"ab é ∑ {NON_BMP} "
    unit_bytes = len(unit.encode())
    text = unit * (n_bytes // unit_bytes)
    return text + "x" * (n_bytes - len(text.encode()))


def left_running(group: list[psutil.Process], before: list[psutil.Process]) -> str:
    """Which of a stopped plugin's process ``group`` and of its descendants noted ``before``
    still run, one "pid command" each; "" when none do."""
    left = {p.pid: p for p in group}
    for child in before:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                left[child.pid] = child
        except psutil.Error:
            continue
    described = []
    for pid, process in sorted(left.items()):
        try:
            described.append(f"{pid} {' '.join(process.cmdline())}")
        except psutil.Error:
            described.append(f"{pid} (gone while looking)")
    return "; ".join(described)


def expect_bounded_growth(
    process: psutil.Process,
    baseline: tuple[int, int],
    between: str,
    max_fds: int,
    max_rss: int,
    what: str = "",
) -> None:
    """Fail unless ``process``'s open descriptors and resident memory grew by at most
    ``max_fds`` and ``max_rss`` bytes since ``baseline`` (descriptors, RSS), measured
    ``between`` two calls ("call 200 and call 1000"); ``what`` names the calls made."""
    fds, rss = process.num_fds(), process.memory_info().rss
    suffix = f" ({what})" if what else ""
    expect(
        fds - baseline[0] <= max_fds,
        f"open descriptors grew from {baseline[0]} to {fds} between {between}{suffix}",
    )
    expect(
        rss - baseline[1] <= max_rss,
        f"resident memory grew by {(rss - baseline[1]) / 2**20:.1f} MiB between {between}",
    )
