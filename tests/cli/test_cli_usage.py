"""What a user touches first on the command line (pluginconf/cli.py, cli_parser.py): usage
errors, help, sizes and launch errors. Usage errors run the real entry in this process (no
plugin starts); the rest run the real command as a subprocess."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from cli_process import run_cli, usage_error

from pluginconf.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout)


@pytest.mark.parametrize(
    ("argv", "role", "suggested"),
    [
        (
            ["plugin", "/bin/true"],
            "the plugin's command",
            "pluginconf plugin [OPTIONS] -- /bin/true",
        ),
        (
            ["host", "./adapter", "--adapter-flag"],
            "the adapter's command",
            "pluginconf host [OPTIONS] -- ./adapter --adapter-flag",
        ),
        (["fuzz", "plugin", "./p"], "the plugin's or the adapter's command", "-- ./p"),
    ],
)
def test_a_command_without_the_double_dash_is_caught(capsys, argv, role, suggested):
    err = usage_error(capsys, *argv)
    assert err.startswith(f"usage: pluginconf {argv[0]}")
    assert f"put {role} after `--`" in err
    assert suggested in err


def test_an_unknown_option_gets_the_subcommand_usage_and_a_suggestion(capsys):
    err = usage_error(capsys, "plugin", "--bogus")
    assert err.startswith("usage: pluginconf plugin")
    assert "unrecognized option '--bogus'" in err
    assert "did you mean" not in err
    err = usage_error(capsys, "host", "--verbse")
    assert err.startswith("usage: pluginconf host")
    assert "did you mean '--verbose'?" in err
    # An option of another subcommand is unknown here.
    assert "unrecognized option '--profile'" in usage_error(capsys, "host", "--profile", "sdk")
    assert "unrecognized arguments: extra" in usage_error(capsys, "list", "plugin", "extra")


def test_no_command_lists_the_commands_and_a_misspelt_one_gets_did_you_mean(capsys):
    err = usage_error(capsys)
    for name in ("plugin", "host", "fuzz", "list", "serve", "bench"):
        assert re.search(rf"^\s+{name}\s", err, re.MULTILINE), name
    assert "no command given" in err
    err = usage_error(capsys, "plugn", "--run", "x")
    assert "unknown command 'plugn' (did you mean 'plugin'?)" in err
    assert "commands: plugin, host, fuzz" in err
    err = usage_error(capsys, "./my-plugin")
    assert "pluginconf plugin -- ./my-plugin" in err
    err = usage_error(capsys, "-v", "plugin")
    assert "a subcommand's options go after it" in err


def test_every_subcommand_help_shows_its_command_and_two_examples():
    parser = build_parser()
    takes = {
        "plugin": "[-- CMD ARGS...]",
        "host": "[-- ADAPTER_CMD ARGS...]",
        "fuzz": "[-- CMD ARGS...]",
    }
    for name, sub in parser.commands.items():
        text = sub.format_help()
        examples = text.split("\nexamples:\n", 1)[1].splitlines()
        assert len(examples) == 2 and all(line.startswith("  ") for line in examples), name
        usage = sub.format_usage()
        if name in takes:
            assert takes[name] in usage and takes[name] in text, name
        else:
            assert "[-- " not in usage, name
        # The wheel ships no docs/ or fake_interpreters/: help points to the project's URLs.
        for bare in re.findall(r"(?<![/\w])(?:docs|fake_interpreters|tests)/\S+", text):
            pytest.fail(f"{name} --help names the repository path {bare}")


def test_pyproject_has_the_project_urls():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())


def test_a_bad_size_says_which_forms_are_accepted(capsys):
    for argv in (
        ["plugin", "--max-body", "lots"],
        ["host", "--max-body", "64MQ"],
        ["fuzz", "plugin", "--max-body", "-5"],
        ["serve", "--plugins", ".", "--max-body", "1.5GiB"],
    ):
        err = usage_error(capsys, *argv)
        assert (
            "is not a size; expected a number of bytes (67108864) or one with a unit: 64MiB" in err
        )


def test_host_run_nomatch_suggests_host_ids(capsys):
    err = usage_error(capsys, "host", "--run", "nomatch")
    assert "matches no case of the host suite" in err
    assert "plugin/" not in err and "'host/" in err
    err = usage_error(capsys, "host", "--run", "host/crash/restart-after-kil")
    assert "did you mean 'host/crash/restart-after-kill'" in err
    err = usage_error(capsys, "plugin", "--run", "host/crash/*")
    assert "(host/... ids are the host suite's)" in err


def _script(tmp_path: Path, name: str, text: str, mode: int) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def test_launch_errors_hint_at_chmod_and_a_shebang_with_a_quoted_command(tmp_path):
    not_executable = _script(tmp_path, "my plugin", "#!/bin/sh\nexit 0\n", 0o644)
    result = run("plugin", "--run", "plugin/handshake/line-format", "--", str(not_executable))
    assert result.returncode == 2, result.stderr
    assert "Permission denied" in result.stderr
    assert f"hint: make it executable: chmod +x '{not_executable}'" in result.stderr
    assert f"command: '{not_executable}'" in result.stderr
    no_shebang = _script(tmp_path, "noshebang", "print('hi')\n", 0o755)
    result = run("plugin", "--run", "plugin/handshake/line-format", "--", str(no_shebang), "a b")
    assert result.returncode == 2, result.stderr
    assert "Exec format error" in result.stderr
    assert "shebang line" in result.stderr and "#!/usr/bin/env python3" in result.stderr
    assert f"command: {no_shebang} 'a b'" in result.stderr
    result = run("host", "--run", "host/launch/environment", "--", str(not_executable))
    assert result.returncode == 2, result.stderr
    assert "could not execute the adapter: Permission denied" in result.stderr
    assert "chmod +x" in result.stderr
    assert f"adapter command: '{not_executable}'" in result.stderr
