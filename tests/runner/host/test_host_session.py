"""The host suite's session: an adapter that dies, and plugin processes a host leaves behind."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from pluginconf.runner import Profile, case
from pluginconf.runner.host.session import HostSuiteSession
from pluginconf.runner.host.target import HostTarget
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
        assert "after the case's plugins were unloaded" in first.message
        assert "The suite killed them" in first.message
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


MUTANT = Path(__file__).resolve().parents[2] / "mutants" / "host_mutant.py"


@case("host/test/grandchild", requirements=["HK-1"], profile=Profile.HOOKS)
async def grandchild(t: HostTarget) -> None:
    """
    Purpose: A plugin with a grandchild in its process group, unloaded after the case.
    Procedure: Load it, wait for the grandchild.
    Asserts: Nothing itself; the session checks what is left.
    """
    plugin = await t.load({"spawn_grandchild": {"seconds": 60}})
    await plugin.wait_event("grandchild")


@case("host/test/refused", requirements=["HK-1"], profile=Profile.HOOKS)
async def refused(t: HostTarget) -> None:
    """
    Purpose: A plugin whose handshake the host refuses.
    Procedure: Load it and wait until the host gives up.
    Asserts: Nothing itself; the session checks what is left.
    """
    plugin = await t.load({"handshake": {"line": "2|1|unix|/x|grpc"}}, wait_active=False)
    await plugin.wait_given_up()


async def _run_on(fault: str, procedure: object) -> object:
    options = HostSuiteOptions(command=(sys.executable, str(MUTANT), fault), start_timeout_s=30)
    async with HostSuiteSession(options) as session:
        return await session.run(procedure)  # type: ignore[arg-type]


@pytest.mark.runs_long(25)
async def test_leftovers_break_the_rule_they_show_broken_whatever_the_case_cites():
    # Only the group's other members left: the group kill of pluginconf's stop sequence.
    members = await _run_on("kills-pid-only", grandchild)
    assert members.outcome is Outcome.FAILED, members
    assert members.violated == ("SV-16", "SV-22"), members
    assert "of the plugins' process groups still run" in members.message
    # The plugin process itself left running: go-plugin's client would have killed it.
    running = await _run_on("refused-left-running", refused)
    assert running.outcome is Outcome.FAILED, running
    assert running.violated == ("SV-14",), running
    assert "the plugin processes" in running.message and "still run" in running.message


@case("host/test/own-host", requirements=["HK-1"], profile=Profile.HOOKS)
async def own_host(t: HostTarget) -> None:
    """
    Purpose: A plugin started by a host whose environment holds a decoy PLUGIN_CLIENT_CERT.
    Procedure: Load it on a host of the case's own and wait until it is active.
    Asserts: It becomes active.
    """
    host = await t.with_scrubbed_decoys("PLUGIN_CLIENT_CERT")
    await host.load()


async def test_a_plugin_that_cannot_start_is_shown_with_what_it_saw_at_its_start():
    result = await _run_on("client-cert-passed", own_host)
    assert result.outcome is Outcome.FAILED, result
    # At once (the host gave up), not after the wait's 30 s, with the variable and its value.
    assert "did not start: the host reports it failed" in result.message, result.message
    assert (
        "PLUGIN_CLIENT_CERT='inherited-decoy': the value the host inherited, passed "
        "through though AutoMTLS is off; the host must remove it (HS-23)"
    ) in result.message, result.message
    assert "it refused to serve and exited with status 1: PLUGIN_CLIENT_CERT is set" in (
        result.message
    )
    assert result.duration_s < 25, result.duration_s


@case("host/test/bad-scenario", requirements=["HK-1"], profile=Profile.HOOKS)
async def bad_scenario(t: HostTarget) -> None:
    """
    Purpose: A case whose scenario the fake could not use.
    Procedure: Load a fake with a misspelt key.
    Asserts: Nothing itself; the load refuses it.
    """
    await t.load({"crash": {"onn": "OnActivate"}})


async def test_a_scenario_the_fake_cannot_use_is_refused_at_the_load_naming_the_key():
    async with HostSuiteSession(HostSuiteOptions(start_timeout_s=30)) as session:
        result = await session.run(bad_scenario)
    # The case's own defect: a suite error naming the key, not a host that failed a start.
    assert result.outcome is Outcome.ERROR, result
    assert "scenario for 'p-" in result.message and "onn" in result.message, result.message
