"""Why a program could not be executed, and what to do about it.

The kernel's answer alone ("Permission denied", "Exec format error") rarely tells a plugin
author that the file lacks its execute bit or its `#!` line.
"""

from __future__ import annotations

import errno
import os
import shlex


def exec_failure(what: str, exc: OSError, program: str) -> str:
    """``could not execute WHAT: REASON``, with a hint for the usual causes."""
    message = f"could not execute {what}: {exc.strerror or exc}"
    hint = _hint(exc, program)
    return f"{message}\n  hint: {hint}" if hint else message


def _hint(exc: OSError, program: str) -> str:
    if exc.errno == errno.EACCES:
        if os.path.isdir(program):
            return f"{program} is a directory; give the program inside it"
        return f"make it executable: chmod +x {shlex.quote(program)}"
    if exc.errno == errno.ENOEXEC:
        return (
            "a script needs a shebang line as its first line (#!/usr/bin/env python3, say), "
            "and a binary must be built for this platform"
        )
    if exc.errno == errno.ENOENT:
        if "/" in program:
            return f"{program} does not exist; check the path"
        return f"{program!r} is not on PATH; give its path (./{program} for one here)"
    return ""
