"""The host's exceptions: one root, HostError, and the typed launch failures.

Every exception the reference host raises derives from HostError (not to be confused with the
control protocol's message ``control_pb2.HostError``, an error reported inside an answer).
Each launch failure's message says what happened, what was expected, what to do.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


class HostError(Exception):
    """The root of every exception the reference host raises."""


class LaunchError(HostError):
    """The plugin could not be started. Carries the command and, if it died, how.

    ``kind`` is the SPEC's error kind (HS-18, HS-20, HS-21, TLS-10), as reported in state
    events; the base class covers what the SPEC names no kind for (the program cannot run).
    """

    kind = "launch_failed"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        line: str | None = None,
        exit_status: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        parts = [message, f"command: {shlex.join(argv)}"]
        if line is not None:
            parts.append(f"handshake line: {line!r}")
        if exit_status is not None:
            parts.append(f"exit status: {describe_exit_status(exit_status)}")
        if stderr_tail:
            parts.append("stderr (last lines):\n  " + "\n  ".join(stderr_tail.splitlines()))
        super().__init__("\n".join(parts))
        self.argv = list(argv)
        self.line = line
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


def describe_exit_status(status: int) -> str:
    """A process's exit status (asyncio's returncode: negative means killed by that signal)."""
    if status < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return str(status)


class NoHandshake(LaunchError):
    """Stdout closed without a handshake line, the process still running."""

    kind = "handshake_eof"


class ExitedBeforeHandshake(LaunchError):
    """The process exited before printing its handshake."""

    kind = "exited_before_handshake"


class MalformedHandshake(LaunchError):
    """A line that should be the handshake does not parse, or names a non-loopback address."""

    kind = "handshake_malformed"


class CoreVersionMismatch(LaunchError):
    kind = "core_version_mismatch"


class AppVersionUnsupported(LaunchError):
    kind = "app_version_mismatch"


class UnknownNetwork(LaunchError):
    kind = "unknown_network"


class UnsupportedProtocol(LaunchError):
    kind = "unsupported_protocol"


class AddressUnreachable(LaunchError):
    kind = "unreachable"


class StartTimeout(LaunchError):
    kind = "start_timeout"


class TooMuchNoise(LaunchError):
    """Too many non-handshake lines on stdout before the handshake."""

    kind = "too_much_noise"


class TLSError(LaunchError):
    """AutoMTLS went wrong: a certificate field missing, unexpected or unusable, or a failed
    TLS handshake (TLS-10, TLS-11). The host never falls back to plaintext."""

    kind = "tls_error"
