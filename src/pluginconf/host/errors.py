"""Typed launch failures. Each message says what happened, what was expected, what to do."""

from __future__ import annotations

from collections.abc import Sequence


class LaunchError(Exception):
    """The plugin could not be started. Carries the command and, if it died, how."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        line: str | None = None,
        exit_status: int | None = None,
        stderr_tail: str = "",
    ) -> None:
        parts = [message, f"command: {' '.join(argv)}"]
        if line is not None:
            parts.append(f"handshake line: {line!r}")
        if exit_status is not None:
            parts.append(f"exit status: {describe_status(exit_status)}")
        if stderr_tail:
            parts.append("stderr (last lines):\n  " + "\n  ".join(stderr_tail.splitlines()))
        super().__init__("\n".join(parts))
        self.argv = list(argv)
        self.line = line
        self.exit_status = exit_status
        self.stderr_tail = stderr_tail


def describe_status(status: int) -> str:
    """asyncio's returncode: negative means killed by that signal."""
    if status < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return str(status)


class NoHandshake(LaunchError):
    """Stdout closed without a handshake line, the process still running."""


class ExitedBeforeHandshake(LaunchError):
    """The process exited before printing its handshake."""


class MalformedHandshake(LaunchError):
    """A line that should be the handshake does not parse."""


class CoreVersionMismatch(LaunchError):
    pass


class AppVersionUnsupported(LaunchError):
    pass


class UnknownNetwork(LaunchError):
    pass


class UnsupportedProtocol(LaunchError):
    pass


class AddressUnreachable(LaunchError):
    pass


class StartTimeout(LaunchError):
    pass


class TooMuchNoise(LaunchError):
    """Too many non-handshake lines on stdout before the handshake."""
