"""Strategies for HTTP requests and bodies, as ServeHTTP carries them.

Requests follow RFC 9110's grammar: methods and header names are tokens, header values are
field values (visible characters and obs-text, with inner spaces, never leading or trailing
whitespace), and raw queries are percent-encoded text. Bodies are described, not drawn byte
by byte: a size (weighted towards the chunk boundaries where framing bugs live), a seed for
the bytes, how the sender splits them into frames, and pauses between frames. So a 4 MiB
body costs Hypothesis a few choices, and shrinks towards small, regular, pause-free bodies.
"""

from __future__ import annotations

import functools
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass

from hypothesis import strategies as st

from pluginconf.protocol.constants import (
    GRPC_MAX_MESSAGE_BYTES,
    HOP_BY_HOP_HEADERS,
    HTTP_CHUNK_BYTES,
)
from pluginconf.units import MIB

# Room for the frame's own encoding, so that a request frame stays within gRPC's limit.
MAX_REQUEST_PIECE = GRPC_MAX_MESSAGE_BYTES - 64
# The most request frames one body is split into.
MAX_FRAMES = 64
# The sizes where framing code splits bodies: the SDK's 64 KiB frames and gRPC's 4 MiB limit.
BOUNDARIES = (HTTP_CHUNK_BYTES, 2 * HTTP_CHUNK_BYTES, 3 * HTTP_CHUNK_BYTES, 4 * MIB)

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
STANDARD_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Request headers whose meaning a host or the HTTP framing owns (SE-8, SH-7): they are kept
# out of requests whose echo is checked exactly.
FRAMING_HEADERS = HOP_BY_HOP_HEADERS | {"content-length", "host"}

tokens = st.text(TCHAR, min_size=1, max_size=16)
# Methods are case-sensitive tokens; ASGI presents them upper-cased, so the exact-echo
# properties draw upper-case ones.
methods = st.sampled_from(STANDARD_METHODS) | tokens.map(str.upper)


def _mixed_case(name: str, mask: int) -> str:
    return "".join(c.swapcase() if mask >> i & 1 else c for i, c in enumerate(name))


# Field values: no control characters; Unicode beyond Latin-1 (non-BMP included) stands for
# the UTF-8 text a host decodes from obs-text bytes (SPEC §14). Leading and trailing
# whitespace is not part of a field value.
_value_char = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"], exclude_characters="\x7f")
field_values = st.text(_value_char, max_size=32).map(lambda v: v.strip(" \t"))


@dataclass(frozen=True)
class FuzzRequest:
    """A ServeHTTP request init: the path is given by the property (a route), or drawn."""

    method: str
    path: str
    raw_query: str
    headers: tuple[tuple[str, tuple[str, ...]], ...]

    def header_pairs(self) -> list[tuple[str, list[str]]]:
        return [(name, list(values)) for name, values in self.headers]


Headers = tuple[tuple[str, tuple[str, ...]], ...]


@functools.cache
def header_lists(exclude: frozenset[str] = FRAMING_HEADERS) -> st.SearchStrategy[Headers]:
    """Headers: up to 5 distinct names (case-insensitively), in mixed case, each with 1 to 4
    values.

    Strategies are built once (hence the cache): Hypothesis validates each new one."""
    one = st.tuples(
        tokens.map(lambda n: n if n.lower() not in exclude else "x-" + n),
        st.integers(0, (1 << 24) - 1),
        st.lists(field_values, min_size=1, max_size=4).map(tuple),
    )
    return st.lists(one, max_size=5, unique_by=lambda h: h[0].lower()).map(
        lambda drawn: tuple((_mixed_case(name, mask), values) for name, mask, values in drawn)
    )


# A raw query (no leading "?"): safe characters, "&" and "=" between pairs, and
# percent-escapes, valid (either case) or not. Drawn as a list of tokens: cheap to draw,
# and it shrinks token by token.
_QUERY_TOKENS = [
    *(string.ascii_letters + string.digits + "-._~!$'()*+,;:@/?&="),
    *(f"%{b:02X}" for b in range(256)),
    *(f"%{b:02x}" for b in range(0x80, 0x100)),
    "%",
    "%G1",
    "%2",
]
raw_queries = st.lists(st.sampled_from(_QUERY_TOKENS), max_size=24).map("".join)
# A request path as sent: segments with percent-escapes, "//", "." and "..".
raw_paths = st.lists(
    st.one_of(
        st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", max_size=10),
        st.sampled_from([".", "..", "%2F", "%2e%2E", "%00", "%", "%zz", "%C3%A9"]),
    ),
    max_size=6,
).map(lambda segments: "/" + "/".join(segments))


def http_requests(
    path: str | st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[FuzzRequest]:
    """Requests with exact-echo-safe methods and headers; ``path`` fixed, drawn, or any."""
    paths = raw_paths if path is None else path
    if isinstance(paths, str):
        paths = st.just(paths)
    return st.builds(FuzzRequest, methods, paths, raw_queries, header_lists())


def any_requests() -> st.SearchStrategy[FuzzRequest]:
    """Any request a host could pass on, framing headers and lower-case methods included."""
    return st.builds(
        FuzzRequest,
        methods | tokens,
        raw_paths | st.sampled_from(["/echo", "/sha256", "/headers", "/status/204"]),
        raw_queries,
        header_lists(exclude=frozenset()),
    )


@dataclass(frozen=True)
class FuzzBody:
    """A body, described: ``size`` bytes from ``seed``, split into frames by ``pieces``
    (cycled; the last frame takes what is left), with ``pauses_ms[i]`` before frame i.

    Pieces are raised so that no body takes more than MAX_FRAMES frames: a 4 MiB body in
    1-byte frames would take minutes."""

    size: int
    seed: int
    pieces: tuple[int, ...]
    pauses_ms: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        floor = max(1, -(-self.size // MAX_FRAMES))
        object.__setattr__(self, "pieces", tuple(max(p, floor) for p in self.pieces or (1,)))

    def data(self) -> bytes:
        return random.Random(self.seed).randbytes(self.size)

    def frames(self, data: bytes | None = None) -> Iterator[bytes]:
        whole = self.data() if data is None else data
        view = memoryview(whole)
        at = 0
        index = 0
        while at < len(whole):
            size = self.pieces[index % len(self.pieces)]
            yield bytes(view[at : at + size])
            at += size
            index += 1

    def pause_before(self, index: int) -> float:
        """Seconds to wait before sending frame ``index``."""
        return self.pauses_ms[index] / 1000 if index < len(self.pauses_ms) else 0.0

    def describe(self) -> str:
        shape = "/".join(str(p) for p in self.pieces)
        pauses = f", pauses {list(self.pauses_ms)} ms" if any(self.pauses_ms) else ""
        return f"{self.size} bytes (seed {self.seed}) in frames of {shape}{pauses}"


@functools.cache
def body_sizes(max_size: int) -> st.SearchStrategy[int]:
    """Sizes from 0 to ``max_size``, a third of them within 2 bytes of a chunk boundary, the
    rest small or log-uniform (every magnitude up to ``max_size`` alike)."""
    near = [b + d for b in BOUNDARIES for d in (-2, -1, 0, 1, 2) if 0 <= b + d <= max_size]
    scaled = st.tuples(st.integers(0, max_size.bit_length()), st.integers(0, max_size)).map(
        lambda drawn: min(max_size, drawn[1] & ((1 << drawn[0]) - 1))
    )
    # Small sizes first: a failing example shrinks towards the first branch.
    choices: list[st.SearchStrategy[int]] = [st.integers(0, min(max_size, 300)), scaled]
    if near:
        choices.insert(1, st.sampled_from(near))
    return st.one_of(choices)


@functools.cache
def piece_sizes(max_piece: int = MAX_REQUEST_PIECE) -> st.SearchStrategy[int]:
    near = [
        b + d for b in (HTTP_CHUNK_BYTES, max_piece) for d in (-1, 0, 1) if 0 < b + d <= max_piece
    ]
    return st.one_of(st.integers(1, max_piece), st.sampled_from(near))


# Pauses of up to 5 ms before the first frames, in one example out of four (enough to
# change how frames interleave); none shrinks first.
_pauses = st.one_of(
    st.just(()), st.just(()), st.just(()), st.lists(st.integers(0, 5), max_size=4).map(tuple)
)


@functools.cache
def bodies(max_size: int = 8 * MIB) -> st.SearchStrategy[FuzzBody]:
    """A body of 0..``max_size`` bytes, its framing, and sometimes pauses between frames."""
    return st.builds(
        FuzzBody,
        size=body_sizes(max_size),
        seed=st.integers(0, 2**32 - 1),
        pieces=st.lists(piece_sizes(), min_size=1, max_size=3).map(tuple),
        pauses_ms=_pauses,
    )
