"""Byte sizes on the command line: `--max-body 64MiB` as well as `--max-body 67108864`."""

from __future__ import annotations

import argparse
import re

from pluginconf.units import GIB, KIB, MIB

_UNITS = {
    "": 1,
    "b": 1,
    "kib": KIB,
    "mib": MIB,
    "gib": GIB,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}
_SIZE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*", re.IGNORECASE)
FORMS = "a number of bytes (67108864) or one with a unit: 64MiB, 512KiB, 1GiB (or KB, MB, GB)"


def parse_size(text: str) -> int:
    """Bytes from ``64MiB``, ``64 MiB``, ``100kb`` or plain ``1024``; ValueError otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size; expected {FORMS}")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def size_argument(text: str) -> int:
    """The argparse ``type=`` of a size option."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
