"""Building the interop tests' Go programs against Debian's go-plugin 1.0.1 sources.

GOPATH mode (GO111MODULE=off, GOPROXY=off), so no network is needed. Without the toolchain
or the sources the calling test is skipped, or fails when PLUGINCONF_REQUIRE_INTEROP=1 (CI).
PLUGINCONF_GOPATH names other sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# Where the Debian golang-*-dev packages put their sources; PLUGINCONF_GOPATH overrides it.
DEFAULT_GOPATH = "/usr/share/gocode"

# Import paths the programs need, and the Debian package that provides each.
GO_DEPENDENCIES = {
    "github.com/hashicorp/go-plugin": "golang-github-hashicorp-go-plugin-dev",
    "github.com/hashicorp/go-hclog": "golang-github-hashicorp-go-hclog-dev",
    "github.com/hashicorp/yamux": "golang-github-hashicorp-yamux-dev",
    "github.com/oklog/run": "golang-github-oklog-run-dev",
    "google.golang.org/grpc": "golang-google-grpc-dev",
    "golang.org/x/net/context": "golang-golang-x-net-dev",
}

BUILD_TIMEOUT_S = 300


def _gopath() -> list[str]:
    return os.environ.get("PLUGINCONF_GOPATH", DEFAULT_GOPATH).split(os.pathsep)


def _missing(gopath: list[str]) -> list[str]:
    return [
        f"{path} ({package})"
        for path, package in GO_DEPENDENCIES.items()
        if not any((Path(root) / "src" / path).is_dir() for root in gopath)
    ]


def go_build(package_dir: Path, out_dir: Path, name: str) -> Path:
    """Build the Go program in ``package_dir`` as ``out_dir/name``."""
    unavailable = (
        pytest.fail if os.environ.get("PLUGINCONF_REQUIRE_INTEROP") == "1" else pytest.skip
    )
    go = shutil.which("go")
    if go is None:
        unavailable(
            "Go toolchain not found: install golang-go and golang-github-hashicorp-go-plugin-dev "
            "(with golang-google-grpc-dev and golang-golang-x-net-dev)"
        )
    assert go is not None
    gopath = _gopath()
    missing = _missing(gopath)
    if missing:
        unavailable(
            f"go-plugin sources not found under {os.pathsep.join(gopath)}: missing "
            + ", ".join(missing)
        )
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",
        GOPATH=os.pathsep.join(gopath),
        GOFLAGS="",
        GOPROXY="off",
        GOTOOLCHAIN="local",
    )
    if not any(env.get(var) for var in ("GOCACHE", "XDG_CACHE_HOME", "HOME")):
        env["GOCACHE"] = str(out_dir / "gocache")
    binary = out_dir / name
    try:
        proc = subprocess.run(
            [go, "build", "-o", str(binary), "."],
            cwd=package_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        pytest.fail(f"go build did not finish within {BUILD_TIMEOUT_S} s:\n{stderr}")
    if proc.returncode != 0:
        pytest.fail(
            f"go build of {package_dir} failed (exit {proc.returncode}):\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return binary
