"""Plugin directories: one folder per plugin, with a manifest `plugin.toml`.

    id = "hello"                       # required; [A-Za-z0-9._-]+
    executable = "bin/hello"           # relative paths resolve against the folder;
                                       # a bare name is looked up on PATH
    args = ["--verbose"]               # optional list of strings
    env = { HELLO_MODE = "fast" }      # optional table of strings
    magic_cookie = "KEY=VALUE"         # optional; default PLUGINCONF_MAGIC_COOKIE=pluginconf
    protocol_versions = [1]            # optional; default [1]
    runtime = "python"                 # optional; then `entry` instead of `executable`
    entry = "plugin.py"                # with runtime = "python": run <interpreter> <entry>
    configuration = { greeting = "hi" }  # optional; given to OnConfigurationChange

With runtime "python" the interpreter is found as Mattermost does: the folder's venv/bin/python,
then .venv/bin/python, then python3 on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluginconf.host.errors import HostError
from pluginconf.protocol.constants import DEFAULT_MAGIC_COOKIE, MagicCookie

MANIFEST = "plugin.toml"
_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_KEYS = {
    "id", "executable", "args", "env", "magic_cookie", "protocol_versions", "runtime", "entry",
    "configuration",
}  # fmt: skip


def valid_plugin_id(plugin_id: str) -> bool:
    """A plugin id is also its HTTP mount (SE-1): letters, digits, '.', '_' or '-'."""
    return _ID.fullmatch(plugin_id) is not None


class ManifestError(HostError):
    """A manifest that cannot be used: names the file, the key and what was expected."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path, self.key, self.problem = path, key, problem


@dataclass(frozen=True)
class Manifest:
    path: Path
    id: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    magic_cookie: MagicCookie = DEFAULT_MAGIC_COOKIE
    protocol_versions: tuple[int, ...] = (1,)
    configuration: dict[str, str] = field(default_factory=dict)


def _strings(path: Path, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(path, key, f"expected a list of strings, got {value!r}")
    return list(value)


def _table(path: Path, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestError(path, key, f"expected a table of strings, got {value!r}")
    return dict(value)


def _program(path: Path, folder: Path, key: str, value: Any, on_path: bool = True) -> str:
    if not isinstance(value, str) or not value:
        raise ManifestError(path, key, f"expected a non-empty string, got {value!r}")
    if on_path and "/" not in value:
        found = shutil.which(value)
        if found is None:
            raise ManifestError(path, key, f"{value!r} is not on PATH")
        return found
    # Absolute, but symlinks kept: a venv's bin/python is a symlink, and following it would
    # leave the venv.
    program = Path(os.path.abspath(folder / value))
    if not program.is_file():
        raise ManifestError(path, key, f"{program} does not exist")
    return str(program)


def python_interpreter(folder: Path) -> str | None:
    for candidate in (folder / "venv/bin/python", folder / ".venv/bin/python"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("python3")


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(path, "(file)", f"cannot read it: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(path, "(file)", f"not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ManifestError(
            path, unknown[0], f"unknown key; expected one of {', '.join(sorted(_KEYS))}"
        )
    if "id" not in data:
        raise ManifestError(
            path,
            "id",
            'missing; every plugin.toml needs one, e.g. id = "hello" (letters, '
            "digits, '.', '_' or '-'; it is also the plugin's URL path /plugins/{id}/)",
        )
    plugin_id = data.get("id")
    if not isinstance(plugin_id, str) or not valid_plugin_id(plugin_id):
        raise ManifestError(
            path, "id", f"expected letters, digits, '.', '_' or '-', got {plugin_id!r}"
        )
    runtime = data.get("runtime")
    if runtime is None:
        if "executable" not in data:
            raise ManifestError(path, "executable", 'required (or runtime = "python" with entry)')
        argv = [_program(path, folder, "executable", data["executable"])]
    elif runtime == "python":
        if "entry" not in data:
            raise ManifestError(path, "entry", 'required with runtime = "python"')
        interpreter = python_interpreter(folder)
        if interpreter is None:
            raise ManifestError(
                path, "runtime", "no venv/bin/python, .venv/bin/python or python3 on PATH"
            )
        argv = [interpreter, _program(path, folder, "entry", data["entry"], on_path=False)]
    else:
        raise ManifestError(path, "runtime", f'expected "python" or no runtime, got {runtime!r}')
    argv += _strings(path, "args", data.get("args", []))
    cookie = DEFAULT_MAGIC_COOKIE
    if "magic_cookie" in data:
        try:
            cookie = MagicCookie.parse(str(data["magic_cookie"]))
        except ValueError as exc:
            raise ManifestError(path, "magic_cookie", str(exc)) from None
    versions = data.get("protocol_versions", [1])
    if (
        not isinstance(versions, list)
        or not versions
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions)
    ):
        raise ManifestError(
            path,
            "protocol_versions",
            f"expected a non-empty list of positive integers, got {versions!r}",
        )
    return Manifest(
        path=path,
        id=plugin_id,
        argv=argv,
        env=_table(path, "env", data.get("env", {})),
        magic_cookie=cookie,
        protocol_versions=tuple(versions),
        configuration=_table(path, "configuration", data.get("configuration", {})),
    )


def load_directory(root: Path) -> tuple[list[Manifest], list[ManifestError]]:
    """Every plugin folder under ``root``; a bad manifest is reported, the others still load."""
    manifests: list[Manifest] = []
    problems: list[ManifestError] = []
    seen: dict[str, Path] = {}
    for folder in sorted(p for p in root.iterdir() if (p / MANIFEST).is_file()):
        try:
            manifest = load_manifest(folder)
        except ManifestError as exc:
            problems.append(exc)
            continue
        if manifest.id in seen:
            problems.append(
                ManifestError(
                    manifest.path, "id", f"{manifest.id!r} is also used by {seen[manifest.id]}"
                )
            )
            continue
        seen[manifest.id] = manifest.path
        manifests.append(manifest)
    return manifests, problems
