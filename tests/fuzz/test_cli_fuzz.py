"""`pluginconf fuzz`: arguments, the JSON report, workers, the database, and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cli_process import run_cli, usage_error

from pluginconf.fuzz.command import plural

ROOT = Path(__file__).resolve().parents[2]
MUTANT = [sys.executable, str(ROOT / "tests" / "mutants" / "reference_mutant.py")]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, cwd=ROOT)


def test_a_campaign_against_the_reference_plugin_writes_the_json_report(tmp_path):
    path = tmp_path / "fuzz.json"
    result = run(
        "fuzz", "plugin", "--examples", "20", "--seed", "5", "--json", str(path),
        "--property", "serve-http/*",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    assert report["target"] == "plugin"
    assert report["seed"] == 5
    assert report["failures"] == []
    assert report["examples"] == sum(p["examples"] for p in report["properties"]) >= 50
    assert report["examples_per_s"] > 0
    ids = [p["property"] for p in report["properties"]]
    assert ids == [
        "plugin/serve-http/echo-roundtrip",
        "plugin/serve-http/bytes-exact",
        "plugin/serve-http/any-request",
    ]
    closing = result.stdout.strip().splitlines()[-1]
    assert closing.startswith("3 passed, 0 failed, ") and "seed 5" in closing


def test_list_names_every_property_with_its_requirements():
    result = run("fuzz", "plugin", "--list")
    assert result.returncode == 0, result.stderr
    assert "plugin/serve-http/echo-roundtrip  sdk" in result.stdout
    assert "RB-2" in result.stdout


def test_bad_arguments_are_usage_errors_that_say_what_to_do():
    cases = [
        (["fuzz", "plugin", "--examples", "0"], "expected a whole number, 1 or more"),
        (["fuzz", "plugin", "--seed", "-3"], "expected a non-negative integer"),
        (["fuzz", "plugin", "--property", "nope/*"], "matches no property; the properties are"),
        (["fuzz", "plugin", "--reproduce", "x"], "select it with --property ID"),
        (["fuzz", "plugin", "-n", "0"], "expected a whole number"),
        (["fuzz", "nothing"], "invalid choice"),
    ]
    for args, words in cases:
        result = run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_plugin_that_cannot_start_is_exit_2_with_the_reason():
    result = run("fuzz", "plugin", "--start-timeout", "5", "--", sys.executable, "-c", "pass")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "exited before printing its handshake" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_share_one_database_that_replays_failures_first(tmp_path):
    db = tmp_path / "db"
    first = tmp_path / "first.json"
    args = ["--profile", "sdk", "--property", "serve-http/echo-roundtrip", "--db", str(db)]
    target = ["--", *MUTANT, "fourth-header-value"]
    result = run("fuzz", "plugin", *args, "-n", "2", "--examples", "400", "--seed", "3",
                 "--json", str(first), *target)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(first.read_text())
    assert report["workers"] == 2
    assert sorted(p["seed"] for p in report["properties"]) == [3, 4]
    assert report["failures"], report
    assert any(db.rglob("*")), "the failure was not saved to the database"
    # Another seed: the saved example is replayed first, so it fails at once.
    second = tmp_path / "second.json"
    result = run("fuzz", "plugin", *args, "--examples", "400", "--seed", "99",
                 "--json", str(second), *target)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    replayed = json.loads(second.read_text())
    assert replayed["failures"][0]["example"] == report["failures"][0]["example"]
    assert replayed["examples"] < 10


def test_a_campaign_against_the_reference_host(tmp_path):
    path = tmp_path / "fuzz.json"
    # Without --examples, the costly host properties run their share of the default 100.
    result = run("fuzz", "host", "--seed", "2", "--json", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(path.read_text())
    assert report["target"] == "host"
    assert report["command"] == ["pluginconf", "reference-host-adapter"]
    assert [p["property"] for p in report["properties"]] == [
        "host/lifecycle/state-machine",
        "host/launch/malformed-handshake",
    ]
    assert all(p["examples"] >= 1 for p in report["properties"])
    assert report["failures"] == []


def test_fuzz_reproduce_garbage_is_a_usage_error(capsys):
    prop = ["fuzz", "plugin", "--property", "plugin/serve-http/echo-roundtrip"]
    err = usage_error(capsys, *prop, "--reproduce", "garbage")
    assert "--reproduce 'garbage' is not a reproduce blob" in err
    assert "HYPOTHESIS_VERSION:BASE64" in err and "'Reproduce'" in err
    err = usage_error(capsys, *prop, "--reproduce", "1.2.3:AAAA")
    assert "recorded by Hypothesis '1.2.3'" in err


def test_fuzz_examples_runs_that_many_of_a_costly_property(tmp_path):
    report = tmp_path / "fuzz.json"
    prop = "plugin/handshake/protocol-versions-env"  # 0.02 of the default: it starts processes
    result = run(
        "fuzz", "plugin", "--property", prop, "--examples", "2", "--seed", "1",
        "--json", str(report), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 property, 2 examples each, seed 1, 1 worker" in result.stdout
    [ran] = json.loads(report.read_text())["properties"]
    assert ran["examples"] == 2
    assert f"{prop}  seed 1: 2 examples in" in result.stdout
    assert plural(1, "example") == "1 example" and plural(2, "worker") == "2 workers"
    assert plural(1, "property", "properties") == "1 property"


def test_fuzz_plugin_takes_the_target_preset(tmp_path):
    result = run("fuzz", "plugin", "--target", "terraform", "--examples", "5")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the magic cookie TF_PLUGIN_MAGIC_COOKIE=" in result.stderr
    result = run(
        "fuzz", "plugin", "--target", "terraform", "--magic-cookie",
        "PLUGINCONF_MAGIC_COOKIE=pluginconf", "--protocol-versions", "1", "--profile", "transport",
        "--property", "handshake/protocol-versions-env", "--examples", "3", "--seed", "5",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 0 failed" in result.stdout
