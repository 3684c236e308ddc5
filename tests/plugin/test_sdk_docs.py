"""docs/sdk.md's example plugin, run as written, and the slim install it promises.

The slim install is real: a fresh virtual environment, `pip install` of this source tree
without extras (and pytest, as a plugin project would have), then the SDK's example served
from it and checked by the suite of the project's own environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINCONF = [sys.executable, "-m", "pluginconf"]
SUITE_MODULES = ("hypothesis", "httpx", "uvicorn", "rich", "psutil", "xdist", "h11")
# A few cases through handshake, Implemented, each kind of hook and ServeHTTP.
CASES = [
    "--run", "plugin/hooks/implemented-consistent",
    "--run", "plugin/hooks/lifecycle-sequence",
    "--run", "plugin/hooks/command-response-type",
    "--run", "plugin/serve-http/framing",
]  # fmt: skip


def code_block(path: Path, marker: str) -> str:
    """The first ```python block after ``marker`` in ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("```python", lines.index(marker)) + 1
    end = lines.index("```", start)
    return "\n".join(lines[start:end]) + "\n"


def sdk_example() -> str:
    return code_block(ROOT / "docs" / "sdk.md", "<!-- sdk-example -->")


def run(
    argv: list[str], timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,  # type: ignore[call-overload]
    )


def make_slim_venv(base: Path) -> Path:
    """A virtual environment with `pip install pluginconf pytest` from this source tree."""
    source = base / "source"  # a copy: pip's in-tree build would write into the repository
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "conformance"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "-q", "--disable-pip-version-check", str(source), "pytest"],
        timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    shutil.rmtree(source)
    return venv


def test_the_readme_sdk_example_passes_the_suite(tmp_path):
    example = tmp_path / "my_plugin.py"
    example.write_text(code_block(ROOT / "README.md", "<!-- readme-sdk-example -->"))
    cases = ["--run", "plugin/hooks/command-response-type", "--run", "plugin/serve-http/framing"]
    result = run([*PLUGINCONF, "plugin", *cases, "--", sys.executable, str(example)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.heavy
@pytest.mark.runs_long(70)
def test_the_slim_install(tmp_path):
    """One test, one install (about 8 s, 20 s in all): each check uses the same environment."""
    slim = make_slim_venv(tmp_path)
    python = str(slim / "bin" / "python")

    # The SDK imports; none of the suite's packages came with it.
    probe = textwrap.dedent(
        f"""
        import importlib.util
        from pluginconf.plugin import AppError, HostAPI, Plugin, ServeConfig, serve
        import pluginconf.reference
        print(sorted(m for m in {SUITE_MODULES!r} if importlib.util.find_spec(m)))
        """
    )
    result = run([python, "-c", probe])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "the slim install pulled in the suite's packages"

    # docs/sdk.md's example, as written, served from it and checked by the suite of this
    # environment.
    example = tmp_path / "greeter.py"
    example.write_text(sdk_example(), encoding="utf-8")
    result = run([*PLUGINCONF, "plugin", *CASES, "--", python, str(example)], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

    # A command that needs the suite names the extra to install: exit 2, no traceback.
    for args in (["plugin"], ["host"], ["fuzz", "plugin"], ["list", "plugin"],
                 ["serve", "--plugins", "."]):  # fmt: skip
        result = run([str(slim / "bin" / "pluginconf"), *args], cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout + result.stderr)
        assert result.stderr.startswith(f"pluginconf {args[0]} needs the suite extra ("), (
            args,
            result.stderr,
        )
        assert result.stderr.rstrip().endswith(
            "is not installed): pip install 'pluginconf[suite]'"
        ), result.stderr
        assert "Traceback" not in result.stderr

    # pluginconf's pytest11 entry points load in every project; without the suite they are
    # inert instead of breaking a plugin project's own tests.
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_mine.py").write_text("def test_ok():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
                 cwd=project, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
