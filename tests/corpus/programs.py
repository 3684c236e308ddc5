"""The command lines of the corpus plugins that are Python programs.

python-plugin's plugin is the one its README shows ("Plugin (async)"): it is read at setup
time from the README as the installed package carries it (its METADATA), so that what runs
is the published example, and its stubs are generated from ``examples/myservice.proto``.
pyvider-rpcplugin's is ``examples/pyvider_plugin.py``, built as its quick-start guide says.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .catalogue import HERE, PYTHON_PLUGIN, PYVIDER, CorpusPlugin
from .install import InstallError, install_binary, install_environment

EXAMPLES = HERE / "examples"
README_HEADING = "### Plugin (async)"
_FENCED_PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _metadata(environment: Path, distribution: str) -> Path:
    found = sorted(environment.glob(f"lib/python*/site-packages/{distribution}-*.dist-info"))
    if not found:
        raise InstallError(f"{environment} has no {distribution} distribution")
    return found[0] / "METADATA"


def readme_plugin(metadata: str) -> str:
    """The first Python block after the README's "Plugin (async)" heading."""
    start = metadata.find(README_HEADING)
    match = _FENCED_PYTHON.search(metadata, start) if start >= 0 else None
    if match is None:
        raise InstallError(f"the README has no Python block under {README_HEADING!r}")
    return match.group(1)


def python_plugin_program(environment: Path, workdir: Path) -> list[str]:
    """python-plugin's README plugin and its generated stubs in ``workdir``; its argv."""
    source = readme_plugin(_metadata(environment, "python_plugin").read_text())
    script = workdir / "my_plugin.py"
    script.write_text(source)
    proto = EXAMPLES / "myservice.proto"
    generated = subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"--proto_path={EXAMPLES}",
            f"--plugin=protoc-gen-grpclib_python={environment / 'bin' / 'protoc-gen-grpclib_python'}",
            f"--python_out={workdir}",
            f"--grpclib_python_out={workdir}",
            str(proto),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if generated.returncode != 0:
        raise InstallError(f"protoc failed on {proto.name}:\n{generated.stdout}{generated.stderr}")
    # Python puts the script's directory first on sys.path: the stubs beside it are found.
    return [str(environment / "bin" / "python"), str(script)]


def pyvider_program(environment: Path) -> list[str]:
    return [str(environment / "bin" / "python"), str(EXAMPLES / "pyvider_plugin.py")]


def program(plugin: CorpusPlugin, workdir: Path) -> list[str]:
    """Install ``plugin`` (from the cache when it is there) and give its command line;
    ``workdir`` holds what is generated for this run only."""
    if plugin.binary is not None:
        return [str(install_binary(plugin))]
    environment = install_environment(plugin)
    if plugin is PYTHON_PLUGIN:
        workdir.mkdir(parents=True, exist_ok=True)
        return python_plugin_program(environment, workdir)
    if plugin is PYVIDER:
        return pyvider_program(environment)
    raise InstallError(f"no program is known for {plugin.name}")
