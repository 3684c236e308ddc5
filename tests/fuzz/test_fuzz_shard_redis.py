"""`pluginconf fuzz --shard I/N` and `--db redis://...`: one campaign over several machines.

The Redis tests start a real redis-server (Debian's package) on a unix socket of their own;
without it they are skipped, unless PLUGINCONF_REQUIRE_REDIS=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import run_cli

from pluginconf.cli import main

ROOT = Path(__file__).resolve().parents[2]
MUTANT = [sys.executable, str(ROOT / "tests" / "mutants" / "reference_mutant.py")]
ECHO = ["--profile", "sdk", "--property", "serve-http/echo-roundtrip"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--shard", "0/2", "--seed", "1"], "--shard 0/2: expected I/N with 1 <= I <= N"),
        (["--shard", "half", "--seed", "1"], "--shard 'half': expected I/N"),
        (["--shard", "1/2"], "--shard 1/2: give every shard the same --seed"),
        (
            [
                "--shard",
                "1/2",
                "--seed",
                "1",
                "--property",
                "serve-http/echo-roundtrip",
                "--reproduce",
                "x",
            ],
            "--reproduce replays one example; leave --shard out",
        ),
        (["--db", "redis://127.0.0.1:1/0"], "the Redis server cannot be reached"),
        (["--db", "redis://127.0.0.1:notaport/0"], "--db redis://127.0.0.1:notaport/0: not a"),
    ],
)
def test_bad_shards_and_databases_are_usage_errors(args, words, capsys):
    # The command line's entry, in this process: each is refused before any target starts.
    assert main(["fuzz", "plugin", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pluginconf fuzz: error: "), err
    assert words in err


def test_a_redis_url_without_the_redis_package_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    assert main(["fuzz", "plugin", "--db", "redis://127.0.0.1:6379/0"]) == 2
    err = capsys.readouterr().err
    assert "--db redis://127.0.0.1:6379/0 needs the redis extra" in err, err
    assert "pip install 'pluginconf[redis]'" in err


def test_a_shard_runs_its_own_seeds_and_share_of_the_examples(tmp_path):
    path = tmp_path / "shard.json"
    result = run("fuzz", "plugin", "--property", "serve-http/echo-roundtrip", "--seed", "10",
                 "--examples", "4", "--shard", "2/2", "-n", "1", "--json", str(path))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shard 2/2: shares 2-2 of 2, seeds 11-11" in result.stdout
    report = json.loads(path.read_text())
    assert report["shard"] == "2/2"
    assert [p["seed"] for p in report["properties"]] == [11]
    assert 1 <= report["examples"] <= 2


@pytest.fixture
def redis_socket(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a unix socket; its URL."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("PLUGINCONF_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (Debian: apt-get install redis-server)")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    try:
        import redis  # noqa: F401
    except ModuleNotFoundError:
        if os.environ.get("PLUGINCONF_REQUIRE_REDIS") == "1":
            pytest.fail("the redis package is missing: pip install 'pluginconf[redis]'")
        pytest.skip("the redis package is missing: pip install 'pluginconf[redis]'")
    socket = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly",
         "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert process.poll() is None, f"redis-server exited with {process.returncode}"
            assert time.monotonic() < deadline, "redis-server made no socket within 10 s"
            time.sleep(0.02)
        yield f"unix://{socket}?db=0"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_two_shards_share_a_failure_through_redis(redis_socket, tmp_path):
    import redis

    target = ["--", *MUTANT, "fourth-header-value"]
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    common = [*ECHO, "--db", redis_socket, "--seed", "3", "--examples", "800"]
    # Machine 1 finds the failure and saves it in Redis.
    result = run("fuzz", "plugin", *common, "--shard", "1/2", "--json", str(first), *target)
    assert result.returncode == 1, result.stdout + result.stderr
    found = json.loads(first.read_text())
    assert found["failures"], found
    client = redis.Redis.from_url(redis_socket)
    try:
        assert client.keys("hypothesis-example:*"), "the failure was not saved in Redis"
    finally:
        client.close()
    # Machine 2, another seed: the saved example is replayed first, so it fails at once.
    result = run("fuzz", "plugin", *common, "--shard", "2/2", "--json", str(second), *target)
    assert result.returncode == 1, result.stdout + result.stderr
    replayed = json.loads(second.read_text())
    assert [p["seed"] for p in replayed["properties"]] == [4]
    assert replayed["failures"][0]["example"] == found["failures"][0]["example"]
    assert replayed["examples"] < 10
