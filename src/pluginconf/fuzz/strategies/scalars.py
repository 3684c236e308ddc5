"""Strategies for protobuf scalar values: integers at their bounds, floats' edges, plain,
nasty and maximal strings and bytes, and enum numbers, known or not.

payloads.py builds whole messages from them.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from google.protobuf.descriptor import FieldDescriptor
from hypothesis import strategies as st

#: Longest string or bytes value (UTF-8 bytes for strings), drawn rarely.
MAX_TEXT_SIZE = 64 * 1024
#: Most elements of a repeated or map field, drawn rarely.
MAX_ELEMENTS = 1024
#: The common case: strings this long, lists this many.
SMALL_SIZE = 16
FEW = 4

_F = FieldDescriptor


_INT_RANGES = {
    **dict.fromkeys((_F.TYPE_INT32, _F.TYPE_SINT32, _F.TYPE_SFIXED32), (-(2**31), 2**31 - 1)),
    **dict.fromkeys((_F.TYPE_INT64, _F.TYPE_SINT64, _F.TYPE_SFIXED64), (-(2**63), 2**63 - 1)),
    **dict.fromkeys((_F.TYPE_UINT32, _F.TYPE_FIXED32), (0, 2**32 - 1)),
    **dict.fromkeys((_F.TYPE_UINT64, _F.TYPE_FIXED64), (0, 2**64 - 1)),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    # Hypothesis reaches the bounds only sometimes; the sampled edges make them certain.
    edges = [e for e in dict.fromkeys((0, -1, 1, low, high, low + 1, high - 1)) if low <= e <= high]
    return st.integers(low, high) | st.sampled_from(edges)


def _floats(
    width: Literal[32, 64], tiny: float, smallest_normal: float, largest: float
) -> st.SearchStrategy[float]:
    edges = [0.0, -0.0, math.inf, -math.inf, math.nan, tiny, -tiny, smallest_normal, largest]
    edges += [-largest, tiny * 3, 1.0, -1.0]
    return st.floats(width=width) | st.sampled_from(edges)


SCALARS: dict[int, st.SearchStrategy[Any]] = {
    **{t: _integers(*bounds) for t, bounds in _INT_RANGES.items()},
    _F.TYPE_BOOL: st.booleans(),
    _F.TYPE_DOUBLE: _floats(64, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308),
    _F.TYPE_FLOAT: _floats(
        32, 1.401298464324817e-45, 1.1754943508222875e-38, 3.4028234663852886e38
    ),
}

# No surrogates: protobuf strings are UTF-8. Hypothesis favours low code points, so the
# characters that break handlers are mixed in on purpose.
_CHARACTERS = st.characters(exclude_categories=["Cs"])
_NASTY_CHARACTERS = (
    "\U0001f9e9",  # non-BMP: a surrogate pair in UTF-16, 4 bytes in UTF-8
    "\U0010ffff",
    "\x00",
    "\ufeff",
    "\ufffd",
    "\u202e",  # right-to-left override
    "\u0301",  # combining accent
    "\r\n",
    "\u00e9",
)
_PLAIN_TEXT = st.text(_CHARACTERS, max_size=SMALL_SIZE)


def _concatenate(*parts: str) -> str:
    return "".join(parts)


_NASTY_TEXT = st.builds(
    _concatenate,
    st.text(_CHARACTERS, max_size=4),
    st.sampled_from(_NASTY_CHARACTERS),
    st.text(_CHARACTERS, max_size=4),
)
SMALL_TEXT = _PLAIN_TEXT | _NASTY_TEXT
_SMALL_BYTES = st.binary(max_size=SMALL_SIZE)


def _fill_text(unit: str, size: int) -> str:
    """``unit`` repeated to ``size`` UTF-8 bytes, less a character cut at the end."""
    encoded = unit.encode()
    return (encoded * (size // len(encoded) + 1))[:size].decode(errors="ignore")


def _fill_bytes(unit: bytes, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


# Built by repetition: Hypothesis cannot draw a single value of more than 8 Ki choices.
_BIG_SIZES = st.integers(SMALL_SIZE + 1, MAX_TEXT_SIZE) | st.just(MAX_TEXT_SIZE)
_BIG_TEXT = st.builds(_fill_text, st.text(_CHARACTERS, min_size=1, max_size=8), _BIG_SIZES)
_BIG_BYTES = st.builds(_fill_bytes, st.binary(min_size=1, max_size=8), _BIG_SIZES)

#: About one draw in sixteen: long lists. False (the common case) shrinks first.
RARE = st.integers(0, 15).map(lambda n: n == 15)
#: How many elements a "many" list has, before the size budget cuts it.
MANY = st.integers(FEW, MAX_ELEMENTS) | st.just(MAX_ELEMENTS)
# One choice for the kind of a string, so that most cost two: 0-49 plain, 50-62 with a nasty
# character (text only), 63 maximal.
STRING_KIND = st.integers(0, 63)
_NASTY, BIG = 50, 63


def draw_text(draw: st.DrawFn, kind: int) -> str:
    if kind == BIG:
        return draw(_BIG_TEXT)
    return draw(_NASTY_TEXT if kind >= _NASTY else _PLAIN_TEXT)


def draw_bytes(draw: st.DrawFn, kind: int) -> bytes:
    return draw(_BIG_BYTES if kind == BIG else _SMALL_BYTES)


@st.composite
def texts(draw: st.DrawFn) -> str:
    return draw_text(draw, draw(STRING_KIND))


def enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    enum = field.enum_type
    assert enum is not None
    declared = list(enum.values_by_number)
    known = st.sampled_from(declared)
    if enum.is_closed:  # proto2: an undeclared number cannot even be assigned
        return known
    # Open enums carry any int32: the receiver must cope with numbers it does not know.
    unknown = [n for n in (99, -1, 2**31 - 1, -(2**31), max(declared) + 1) if n not in declared]
    return known | st.sampled_from(unknown) | st.integers(-(2**31), 2**31 - 1)


def is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return field.is_repeated and entry is not None and bool(entry.GetOptions().map_entry)


def is_message(field: FieldDescriptor) -> bool:
    return field.type in (_F.TYPE_MESSAGE, _F.TYPE_GROUP)
