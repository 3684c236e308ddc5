"""Running a case (runner/engine.py): each way a procedure can end, and its outcome.

Tiny real cases run through the real engine, on a minimal target (one that only says what
step it is at), or on the reference plugin where the shared process matters."""

from __future__ import annotations

import asyncio
import sys

import grpc
import httpx
from grpc_health.v1 import health_pb2

from pluginconf.host.errors import LaunchError
from pluginconf.runner.engine import SuiteSession, execute
from pluginconf.runner.model import Case, Outcome, Procedure, Profile, case, check, fail, skip
from pluginconf.runner.options import PluginSuiteOptions
from pluginconf.runner.plugin.shared import TargetUnusable

REFERENCE = [sys.executable, "-m", "pluginconf", "reference-plugin"]
DOC = """
    Purpose: A self-test of the engine.
    Procedure: Whatever the test gives.
    Asserts: Nothing: the engine's outcome is under test.
    """


class _Step:
    """The least a target is to the engine: the step it is at, for the evidence."""

    current_step = "waiting for the answer"


def _case(procedure: Procedure, *cited: str, timeout_s: float = 10.0) -> Case:
    procedure.__doc__ = DOC
    return case("plugin/selftest/engine", requirements=cited or ("CT-3", "CT-10"),
                profile=Profile.TRANSPORT, timeout_s=timeout_s)(procedure)  # fmt: skip


async def _run(procedure: Procedure, *cited: str, timeout_s: float = 10.0):
    return await execute(_case(procedure, *cited, timeout_s=timeout_s), _Step())


async def test_a_procedure_that_returns_passes():
    async def returns(t):
        pass

    executed = await _run(returns)
    assert (executed.outcome, executed.message, executed.violated) == (Outcome.PASSED, "", ())


async def test_a_failure_is_attributed_to_the_requirement_it_names_else_to_all_cited():
    async def late(t):
        fail("exited after 3 s", requirement="CT-10")

    executed = await _run(late)
    assert executed.outcome is Outcome.FAILED
    assert (executed.message, executed.violated) == ("exited after 3 s", ("CT-10",))

    async def unnamed(t):
        fail("no answer")

    executed = await _run(unnamed)
    assert executed.violated == ("CT-3", "CT-10")


async def test_every_check_failure_is_collected_with_its_requirements():
    async def two_checks(t):
        check(False, "first", requirement="CT-10")
        check(True, "fine")
        check(False, "second", requirement="CT-3")

    executed = await _run(two_checks)
    assert executed.outcome is Outcome.FAILED
    assert executed.message == "(1) [CT-10] first\n(2) [CT-3] second"
    assert executed.violated == ("CT-3", "CT-10")  # in the order the case cites them

    async def check_then_fail(t):
        check(False, "checked", requirement="CT-3")
        fail("then stopped")

    executed = await _run(check_then_fail)
    assert executed.message == "(1) [CT-3] checked\n(2) then stopped"
    assert executed.violated == ("CT-3", "CT-10")  # the failure named none: all of them


async def test_a_check_failure_stands_when_the_case_then_skips():
    async def check_then_skip(t):
        check(False, "checked", requirement="CT-3")
        skip("not applicable")

    executed = await _run(check_then_skip)
    assert (executed.outcome, executed.message) == (Outcome.FAILED, "checked")
    assert executed.violated == ("CT-3",)


async def test_a_failure_blamed_on_a_requirement_the_case_does_not_cite_is_a_suite_error():
    async def foreign(t):
        check(False, "wrong rule", requirement="TR-1")
        fail("and this", requirement="CT-3")

    executed = await _run(foreign)
    assert executed.outcome is Outcome.ERROR
    assert executed.message == (
        "the suite itself failed: case plugin/selftest/engine attributes a failure to TR-1, "
        "which it does not cite\n(1) [TR-1] wrong rule\n(2) [CT-3] and this"
    )


async def test_an_unusable_target_may_name_requirements_the_case_does_not_cite():
    async def shared_address(t):
        raise TargetUnusable("another process listens there", ("TR-14",))

    executed = await _run(shared_address)
    assert executed.outcome is Outcome.FAILED
    assert executed.violated == ("TR-14",)


async def test_a_skip_is_a_skip_with_its_reason():
    async def skips(t):
        skip("no GRPCStdio")

    executed = await _run(skips)
    assert (executed.outcome, executed.message) == (Outcome.SKIPPED, "no GRPCStdio")


async def test_a_case_outliving_its_bound_fails_naming_the_step():
    async def hangs(t):
        await asyncio.sleep(30)

    executed = await _run(hangs, timeout_s=0.05)
    assert executed.outcome is Outcome.FAILED and executed.timed_out
    assert executed.message == (
        "no result within the case's bound of 0.05s; it was waiting for the answer"
    )

    async def own_timeout(t):
        await asyncio.wait_for(asyncio.sleep(30), 0.01)

    executed = await _run(own_timeout)
    assert executed.timed_out
    assert executed.message == "timed out while waiting for the answer"


async def test_a_failed_call_fails_the_case_with_its_status():
    async def call_fails(t):
        metadata = grpc.aio.Metadata()
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, metadata, metadata, "gone")

    executed = await _run(call_fails)
    assert executed.outcome is Outcome.FAILED
    assert (
        executed.message == "while waiting for the answer: the call failed with UNAVAILABLE: gone"
    )

    async def request_fails(t):
        raise httpx.ConnectError("refused")

    executed = await _run(request_fails)
    assert executed.message == (
        "while waiting for the answer: the HTTP request failed: ConnectError: refused"
    )

    async def cannot_launch(t):
        raise LaunchError("no such file", argv=["./p"])

    executed = await _run(cannot_launch)
    assert executed.outcome is Outcome.FAILED
    assert executed.message == "a plugin process could not be started:\nno such file\ncommand: ./p"


async def test_an_unexpected_exception_is_a_suite_error_with_its_traceback():
    async def broken(t):
        {}["missing"]

    executed = await _run(broken)
    assert executed.outcome is Outcome.ERROR
    assert executed.message.startswith("the suite itself failed:\nTraceback")
    assert "KeyError: 'missing'" in executed.message


@case("plugin/selftest/call-after-start", requirements=["HL-1"], profile=Profile.TRANSPORT)
async def _call_after_start(t):
    """
    Purpose: A self-test: a call that fails once the shared process has started.
    Procedure: Start the shared process, then ask for the health of an unknown service.
    Asserts: Nothing: the runner's evidence is under test.
    """
    shared = await t.shared()
    await shared.health.Check(health_pb2.HealthCheckRequest(service="no-such-service"))


async def test_a_failure_after_the_start_does_not_blame_the_start():
    """The step a failure's evidence names is the case's own once the set-up succeeded."""
    options = PluginSuiteOptions(command=tuple(REFERENCE), profile=Profile.TRANSPORT)
    async with SuiteSession(options) as session:
        result = await session.run(_call_after_start)
    assert result.outcome is Outcome.FAILED, result.message
    assert "NOT_FOUND" in result.message, result.message
    assert "starting the shared plugin process" not in result.message, result.message
    assert "while running the case's own calls and checks" in result.message, result.message
    assert result.id == "plugin/selftest/call-after-start" and result.duration_s > 0
