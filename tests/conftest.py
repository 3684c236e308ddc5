"""Shared fixtures: launching real plugin processes, and checking that nothing leaks."""

from __future__ import annotations

import contextlib
import gc
import glob
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from _pytest.logging import caplog_records_key
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pluginconf.host.launcher import LaunchedPlugin, LaunchSpec, launch

# Each test process (xdist worker) gets its own TMPDIR, inherited by the plugins it starts,
# so that the socket-directory leak check sees only this process's directories.
_PRIVATE_TMP = tempfile.mkdtemp(prefix=f"pct-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
os.environ["TMPDIR"] = _PRIVATE_TMP
tempfile.tempdir = None

REFERENCE = [sys.executable, "-m", "pluginconf", "reference-plugin"]
TEST_PLUGINS = Path(__file__).parent / "plugins"


def test_plugin(name: str, *args: str) -> list[str]:
    """Command line of a plugin script in tests/plugins/."""
    return [sys.executable, str(TEST_PLUGINS / f"{name}.py"), *args]


test_plugin.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid}: {' '.join(process.cmdline())}"
    except psutil.Error:
        return f"{process.pid}: (already gone)"


def _open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return fds


def _new_fds(before: dict[int, str], settle_s: float = 2.0) -> dict[int, str]:
    """Descriptors not open before, once gRPC has had a bounded time to release its own."""
    deadline = time.monotonic() + settle_s
    while True:
        new = {fd: target for fd, target in _open_fds().items() if before.get(fd) != target}
        if new:
            # gRPC objects held by exception tracebacks are freed only by the collector. Only
            # then: a full collection in a worker costs tens of milliseconds, after every test.
            gc.collect()
            new = {fd: target for fd, target in _open_fds().items() if before.get(fd) != target}
        if not new or time.monotonic() > deadline:
            return new
        time.sleep(0.02)  # gRPC closes its pollers on a thread of its own; nothing to wait on


def _socket_dirs() -> set[str]:
    found = set(glob.glob(os.path.join(_PRIVATE_TMP, "*")))
    return {d for d in found if not os.path.basename(d).startswith("pytest-of-")}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_PRIVATE_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def grpc_warm() -> None:
    """Start gRPC's process-wide machinery (pollers, TLS) once, before any leak baseline."""
    import asyncio

    async def warm() -> None:
        for mtls in (False, True):
            plugin = await launch(LaunchSpec(argv=REFERENCE, auto_mtls=mtls, start_timeout_s=30))
            health = health_pb2_grpc.HealthStub(plugin.channel)
            # A call with a deadline, and a failing one, start gRPC's timer machinery.
            await health.Check(health_pb2.HealthCheckRequest(service="plugin"), timeout=10)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await health.Check(health_pb2.HealthCheckRequest(service="?"), timeout=10)
            await plugin.stop()

    asyncio.run(warm())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest, grpc_warm: None) -> Iterator[None]:
    """After each test: no child process, no zombie, no socket dir, no new descriptors."""
    me = psutil.Process()
    dirs_before = _socket_dirs()
    fds_before = _open_fds()
    yield
    children = me.children(recursive=True)
    left = [_describe(c) for c in children]
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=5)
    assert not children, f"processes left behind: {left}"
    zombies = [p for p in me.children() if p.status() == psutil.STATUS_ZOMBIE]
    assert not zombies, f"unreaped children: {zombies}"
    leaked_dirs = _socket_dirs() - dirs_before
    assert not leaked_dirs, f"socket directories left behind: {sorted(leaked_dirs)}"
    if request.node.stash.get(_CALL_FAILED, False):
        return  # the failure's traceback keeps the test's event loop and channels alive
    # Captured log records keep logged exceptions, and through their tracebacks the gRPC
    # objects they were raised near; they are no leak of the code under test.
    for records in request.node.stash.get(caplog_records_key, {}).values():
        records.clear()
    assert not _new_fds(fds_before), f"descriptors opened and not closed: {_new_fds(fds_before)}"


Launcher = Callable[..., Awaitable[LaunchedPlugin]]


@pytest.fixture
async def launch_plugin() -> AsyncIterator[Launcher]:
    """Launch plugins (default: the reference plugin); every one is stopped and reaped after."""
    launched: list[LaunchedPlugin] = []

    async def _launch(argv: list[str] | None = None, **kwargs: object) -> LaunchedPlugin:
        kwargs.setdefault("start_timeout_s", 30)
        spec = LaunchSpec(argv=argv or REFERENCE, **kwargs)  # type: ignore[arg-type]
        plugin = await launch(spec)
        launched.append(plugin)
        return plugin

    yield _launch
    for plugin in launched:
        await plugin.stop()


def _expected_s(item: pytest.Item) -> float:
    mark = item.get_closest_marker("runs_long")
    return float(mark.args[0]) if mark is not None else 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked runs_long, the longest first, spread evenly over the first half of
    the run; the rest in their usual order. xdist hands each worker a run of consecutive
    tests, so spread out they start early on every worker, and the run does not end on a
    long test that one worker started when the others had nothing left."""
    long = sorted((i for i in items if _expected_s(i)), key=lambda i: -_expected_s(i))
    if not long:
        return
    rest = [i for i in items if not _expected_s(i)]
    step = len(rest) / 2 / len(long)
    ordered: list[pytest.Item] = []
    taken = 0
    for k, item in enumerate(long):
        upto = max(taken, round(k * step))
        ordered += rest[taken:upto]
        taken = upto
        ordered.append(item)
    items[:] = ordered + rest[taken:]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: three workers per CPU. Most of a test's time is spent waiting on the
    processes it started (a plugin's exit, a host's restart backoff, a guard that must be
    generous), not computing, and the suite's verdicts do not depend on load."""
    return 3 * (os.cpu_count() or 1)
