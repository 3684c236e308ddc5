"""Deterministic bytes for /bytes, reproducible in any language with SHAKE-128.

Block i of seed S is the first 65536 bytes of SHAKE-128("pluginconf/bytes" || S || i), with
S and i as 8-byte big-endian integers; the stream is block 0, block 1, ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

BLOCK_BYTES = 65536
_DOMAIN = b"pluginconf/bytes"


def block(seed: int, index: int) -> bytes:
    material = _DOMAIN + seed.to_bytes(8, "big") + index.to_bytes(8, "big")
    return hashlib.shake_128(material).digest(BLOCK_BYTES)


def iter_bytes(n: int, seed: int = 0, piece: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The first ``n`` bytes of the stream for ``seed``, in pieces of ``piece`` bytes."""
    if n < 0 or piece <= 0:
        raise ValueError("n must be >= 0 and piece > 0")
    pending = bytearray()
    index = 0
    remaining = n
    while remaining > 0:
        while len(pending) < min(piece, remaining):
            pending += block(seed, index)
            index += 1
        size = min(piece, remaining)
        out = bytes(pending[:size])
        del pending[:size]
        remaining -= size
        yield out


def generate_bytes(n: int, seed: int = 0) -> bytes:
    return b"".join(iter_bytes(n, seed))
