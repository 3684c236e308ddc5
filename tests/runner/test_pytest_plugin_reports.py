"""The suite as a pytest plugin in a project's own run: pytest's header counts its cases as
collected items, --junitxml names them as pluginconf --junit-xml does, and
--pluginconf-shard takes the same slice as --shard."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

from pluginconf.runner.cli.shard import Shard, take_shard
from pluginconf.runner.model import Profile
from pluginconf.runner.registry import Selection, load_cases

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-n", "0"]
HANDSHAKE = "plugin/handshake/*"


def test_header_counts_junit_names_and_shard(tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    pass\n")
    chosen = Selection(Profile.SDK, (HANDSHAKE,), ()).apply(load_cases("plugin"))
    mine = take_shard(chosen, Shard(1, 2))
    picked = mine[0].id
    result = subprocess.run(
        [*PYTEST, "--pluginconf-plugin-cmd", "reference", "--pluginconf-run", HANDSHAKE,
         "--pluginconf-shard", "1/2", "-k", f"test_own or {picked.rsplit('/', 1)[1]}",
         "--junitxml", "j.xml", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    collected = len(mine) + 1  # the project's own test, and the shard's cases
    assert f"collected {collected} items / {collected - 2} deselected / 2 selected" in result.stdout
    assert "2 passed" in result.stdout
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "pluginconf plugin"
    names = {(c.get("classname"), c.get("name")) for c in suite.findall("testcase")}
    assert names == {("test_own", "test_own"), ("plugin.handshake", picked.rsplit("/", 1)[1])}
    case = next(c for c in suite.findall("testcase") if c.get("classname") == "plugin.handshake")
    props = [(p.get("name"), p.get("value")) for p in case.findall("properties/property")]
    assert [v for n, v in props if n == "requirement"] == list(mine[0].requirements)
    assert ("level", str(mine[0].level)) in props


def test_a_bad_pluginconf_shard_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [*PYTEST, "--pluginconf-plugin-cmd", "reference", "--pluginconf-shard", "5/4",
         str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert "'5/4': I must be between 1 and N" in result.stderr
