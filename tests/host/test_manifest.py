"""plugin.toml manifests: every key validated, errors naming file, key and expectation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pluginconf.host.manifest import ManifestError, load_directory, load_manifest
from pluginconf.protocol import MagicCookie


def folder(root: Path, name: str, toml: str, files: dict[str, str] | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "plugin.toml").write_text(toml)
    for rel, text in (files or {}).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
        (path / rel).chmod(0o755)
    return path


def test_full_manifest(tmp_path):
    f = folder(
        tmp_path,
        "hello",
        'id = "hello"\nexecutable = "bin/hello"\nargs = ["-v", "x"]\nenv = { A = "1" }\n'
        'magic_cookie = "APP=yes"\nprotocol_versions = [2, 3]\nconfiguration = { k = "v" }\n',
        {"bin/hello": "#!/bin/sh\n"},
    )
    m = load_manifest(f)
    assert m.id == "hello"
    assert m.argv == [str(f / "bin/hello"), "-v", "x"]
    assert m.env == {"A": "1"}
    assert m.magic_cookie == MagicCookie("APP", "yes")
    assert m.protocol_versions == (2, 3)
    assert m.configuration == {"k": "v"}


def test_bare_executable_is_found_on_path(tmp_path):
    m = load_manifest(folder(tmp_path, "p", 'id = "p"\nexecutable = "sh"\n'))
    assert os.path.basename(m.argv[0]) == "sh"
    assert os.path.isabs(m.argv[0])


def test_python_runtime_prefers_the_folders_venv_and_keeps_its_symlink(tmp_path):
    f = folder(
        tmp_path, "py", 'id = "py"\nruntime = "python"\nentry = "main.py"\n', {"main.py": ""}
    )
    (f / "venv/bin").mkdir(parents=True)
    (f / "venv/bin/python").symlink_to(sys.executable)
    m = load_manifest(f)
    # The symlink itself: following it would leave the venv and its packages.
    assert m.argv == [str(f / "venv/bin/python"), str(f / "main.py")]


def test_python_runtime_falls_back_to_python3(tmp_path):
    f = folder(
        tmp_path, "py", 'id = "py"\nruntime = "python"\nentry = "main.py"\n', {"main.py": ""}
    )
    m = load_manifest(f)
    assert os.path.basename(m.argv[0]).startswith("python3")


@pytest.mark.parametrize(
    ("toml", "key", "fragment"),
    [
        ('executable = "sh"\n', "id", "missing; every plugin.toml needs one"),
        ('id = "a b"\nexecutable = "sh"\n', "id", "expected letters"),
        ('id = "a"\n', "executable", "required"),
        ('id = "a"\nexecutable = "bin/missing"\n', "executable", "does not exist"),
        ('id = "a"\nexecutable = "no-such-program-anywhere"\n', "executable", "is not on PATH"),
        ('id = "a"\nexecutable = "sh"\nargs = "x"\n', "args", "list of strings"),
        ('id = "a"\nexecutable = "sh"\nenv = { A = 1 }\n', "env", "table of strings"),
        ('id = "a"\nexecutable = "sh"\nmagic_cookie = "nokey"\n', "magic_cookie", "KEY=VALUE"),
        (
            'id = "a"\nexecutable = "sh"\nprotocol_versions = []\n',
            "protocol_versions",
            "non-empty list",
        ),
        (
            'id = "a"\nexecutable = "sh"\nprotocol_versions = [true]\n',
            "protocol_versions",
            "positive integers",
        ),
        ('id = "a"\nruntime = "ruby"\nentry = "x"\n', "runtime", 'expected "python"'),
        ('id = "a"\nruntime = "python"\n', "entry", "required"),
        ('id = "a"\nexecutable = "sh"\ncolour = "red"\n', "colour", "unknown key"),
        ('id = "a"\nexecutable = [\n', "(file)", "not valid TOML"),
    ],
)
def test_bad_manifests_name_the_key(tmp_path, toml, key, fragment):
    f = folder(tmp_path, "bad", toml)
    with pytest.raises(ManifestError) as info:
        load_manifest(f)
    assert info.value.key == key
    assert fragment in str(info.value)
    assert str(f / "plugin.toml") in str(info.value)


def test_a_bad_manifest_does_not_stop_the_others(tmp_path):
    folder(tmp_path, "a", 'id = "a"\nexecutable = "sh"\n')
    folder(tmp_path, "b", 'id = "b"\nexecutable = "sh"\nargs = 3\n')
    folder(tmp_path, "c", 'id = "a"\nexecutable = "sh"\n')  # duplicate id
    folder(tmp_path, "d", 'id = "d"\nexecutable = "sh"\n')
    (tmp_path / "not-a-plugin").mkdir()
    manifests, problems = load_directory(tmp_path)
    assert [m.id for m in manifests] == ["a", "d"]
    assert [(p.path.parent.name, p.key) for p in problems] == [("b", "args"), ("c", "id")]
    assert "also used by" in str(problems[1])
