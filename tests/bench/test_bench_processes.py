"""The processes and transfers `pluginconf bench` measures: a benchmark that cannot run (an
echo that does not come back intact, a run that fails) says why, as a BenchError."""

from __future__ import annotations

import pytest

from pluginconf.bench.errors import BenchError
from pluginconf.bench.measuring.transfers import ECHO_PATH, grpc_echo, http_echo
from pluginconf.bench.processes.raw import raw_server
from pluginconf.bench.processes.reference import reference_plugin
from pluginconf.bench.processes.runs import run_pluginconf
from pluginconf.bench.processes.serve import serve_process


async def test_an_echo_that_does_not_come_back_intact_is_a_bench_error():
    async with serve_process() as served:
        await http_echo(served.base_url, ECHO_PATH, 65536, 30)  # the real echo is fine
        with pytest.raises(BenchError, match="did not return what was sent: status 200"):
            await http_echo(served.base_url, "/plugins/ref/sha256", 65536, 30)


async def test_a_grpc_echo_that_does_not_come_back_intact_is_a_bench_error():
    async with raw_server() as raw, reference_plugin() as sdk:
        await grpc_echo(raw.stub, 3 * 65536 + 1)
        await grpc_echo(sdk.stub, 3 * 65536 + 1)
        # /sha256 reads the body and answers with its length and digest instead.
        with pytest.raises(BenchError, match="did not return what was sent: 196609 bytes sent"):
            await grpc_echo(sdk.stub, 3 * 65536 + 1, path="/sha256")


async def test_a_run_that_fails_is_a_bench_error_quoting_its_output():
    with pytest.raises(BenchError) as caught:
        await run_pluginconf(["plugin", "--run", "plugin/no-such-case/*"], 60)
    message = str(caught.value)
    assert "exited with status 2 (0 expected)" in message
    assert "plugin/no-such-case/*" in message
