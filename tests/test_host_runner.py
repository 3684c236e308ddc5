"""The host suite's session: an adapter that dies, and plugin processes a host leaves behind."""

from __future__ import annotations

import os
import signal

import psutil

from pluginconf.runner import Profile, case
from pluginconf.runner.host_session import HostSuiteSession
from pluginconf.runner.host_target import HostTarget
from pluginconf.runner.model import Outcome
from pluginconf.runner.options import HostSuiteOptions


@case("host/test/adapter-dies", requirements=["SV-19"], profile=Profile.HOOKS)
async def adapter_dies(t: HostTarget) -> None:
    """
    Purpose: A host that dies mid-case.
    Procedure: Kill the adapter while a plugin with a grandchild runs.
    Asserts: Nothing itself; the session reports.
    """
    plugin = await t.load({"spawn_grandchild": {"seconds": 60}})
    await plugin.wait_event("grandchild")
    os.killpg(t.adapter.pid, signal.SIGKILL)
    await t.adapter.process.wait()  # type: ignore[union-attr]


@case("host/test/works", requirements=["SV-19"], profile=Profile.HOOKS)
async def works(t: HostTarget) -> None:
    """
    Purpose: A case after the adapter died.
    Procedure: Load a plugin and call it.
    Asserts: It answers.
    """
    plugin = await t.load()
    outcome = await plugin.command("/still-here")
    assert outcome.WhichOneof("result") == "response", outcome


async def test_a_dead_adapter_fails_its_case_with_evidence_and_a_new_one_serves_the_next():
    async with HostSuiteSession(HostSuiteOptions(start_timeout_s=30)) as session:
        first = await session.run(adapter_dies)
        assert first.outcome is Outcome.FAILED, first
        assert "the adapter exited during this case" in first.message
        assert "adapter stderr" in first.message
        # The killed host never stopped its plugin's grandchild: the suite names and kills it.
        assert "these plugin processes remain" in first.message
        second = await session.run(works)
        assert second.outcome is Outcome.PASSED, second
        workdir = session.workdir
    assert not workdir.exists()
    leftovers = [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
    ]
    assert not leftovers, leftovers
