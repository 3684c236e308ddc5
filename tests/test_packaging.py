"""The wheel as a user gets it: built from the repository, installed with the suite extra into a
fresh virtual environment outside it, and both suites run from there against the references."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from pluginconf.runner.registry import load_cases

ROOT = Path(__file__).resolve().parent.parent
# Where each installed package tree comes from in the repository (pyproject.toml's package-dir).
PACKAGE_TREES = {
    PurePosixPath("pluginconf"): Path("src", "pluginconf"),
    PurePosixPath("pluginconf", "conformance"): Path("conformance"),
}
# Files in a package tree that are the repository's documentation, not the package's data.
NOT_SHIPPED = {"README.md"}
# The data the runner and the cases read at run time: the wheel must never lose them.
ESSENTIAL = {
    "pluginconf/py.typed",
    "pluginconf/conformance/exemptions.txt",
    "pluginconf/conformance/mutants.json",
}
CLOSING = re.compile(r"(\d+) passed, 0 failed, (\d+) skipped")


def _tree_contents(source: Path) -> tuple[set[str], set[str]]:
    """The package directories (those with an __init__.py) and data files, as wheel paths."""
    packages: set[str] = set()
    data: set[str] = set()
    for prefix, relative in PACKAGE_TREES.items():
        tree = source / relative
        for directory, subdirs, files in os.walk(tree):
            subdirs[:] = [d for d in subdirs if d != "__pycache__" and not d.startswith(".")]
            in_wheel = prefix.joinpath(*Path(directory).relative_to(tree).parts)
            if "__init__.py" in files:
                packages.add(str(in_wheel))
            data.update(
                str(in_wheel / name)
                for name in files
                if not name.endswith((".py", ".pyc"))
                and name not in NOT_SHIPPED
                and not name.startswith(".")
            )
    return packages, data


def _source_copy(destination: Path) -> Path:
    """The repository's files as a fresh clone has them (plus new, unignored ones).

    The wheel is built from a copy so that a build/ directory left in the repository by an
    earlier build cannot put stale modules into it, and the build writes nothing here.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return destination


def _pip(*args: str, timeout: float) -> None:
    # The test's own pip, with its cache: the fresh environment reuses what the development
    # install already downloaded.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}\n{result.stdout}\n{result.stderr}"


@pytest.mark.heavy
@pytest.mark.runs_long(60)
@pytest.mark.timeout(900)
def test_the_wheel_installs_and_runs_both_suites_outside_the_repository(tmp_path: Path) -> None:
    # About a minute idle: the build, the install, then one area of each suite.
    source = _source_copy(tmp_path / "source")
    dist = tmp_path / "dist"
    _pip("wheel", "--no-deps", "--wheel-dir", str(dist), str(source), timeout=300)
    (wheel,) = dist.glob("pluginconf-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packages, data = _tree_contents(source)
    assert "pluginconf/conformance/host" in packages
    assert sorted(p for p in packages if f"{p}/__init__.py" not in names) == []
    assert not {n for n in names if "__pycache__" in n or n.endswith(".pyc")}
    assert names >= ESSENTIAL
    assert sorted(data - names) == [], "data files missing: see [tool.setuptools.package-data]"
    assert any(n.endswith("/requirements.json") for n in names)
    assert any(n.endswith(".pyi") for n in names)

    environment = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    _pip("--python", str(python), "install", f"{wheel}[suite]", timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{environment / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    where = run(
        str(python),
        "-c",
        "import pluginconf, pluginconf.conformance as c; print(pluginconf.__file__, c.__file__)",
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(environment) for p in where.stdout.split()), where.stdout

    pluginconf = str(environment / "bin" / "pluginconf")
    # Every case module imports from the wheel: each suite lists as many cases as the source.
    for suite in ("plugin", "host"):
        listed = run(pluginconf, "list", suite, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.strip().splitlines()[-1] == f"{len(load_cases(suite))} cases"
    # One area of each suite runs against the bundled references: the whole suites run in
    # the rest of the tests, and CI's time is counted.
    for suite, area in (("plugin", "plugin/handshake/*"), ("host", "host/launch/*")):
        result = run(pluginconf, suite, "--run", area, timeout=300)
        closing = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        assert result.returncode == 0, f"pluginconf {suite}\n{result.stdout}\n{result.stderr}"
        match = CLOSING.fullmatch(closing)
        assert match, f"pluginconf {suite} closed with {closing!r}"
        assert int(match.group(1)) > 0
