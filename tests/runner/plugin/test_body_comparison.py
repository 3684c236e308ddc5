"""The suite's ServeHTTP client compares bodies exactly and reports where they differ."""

from __future__ import annotations

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner.plugin.http import BodyComparison


def test_exact_body_in_any_pieces():
    comparison = BodyComparison(iter_bytes(300000, seed=1))
    data = b"".join(iter_bytes(300000, seed=1))
    for start in range(0, len(data), 7777):
        comparison.feed(data[start : start + 7777])
    assert comparison.finish() is None


def test_a_flipped_byte_is_located():
    data = bytearray(b"".join(iter_bytes(70000)))
    data[65536] ^= 0xFF
    comparison = BodyComparison(iter_bytes(70000))
    comparison.feed(bytes(data[:1000]))
    comparison.feed(bytes(data[1000:]))
    assert comparison.finish().startswith("first difference at offset 65536")


def test_short_and_long_bodies_are_reported():
    short = BodyComparison(iter_bytes(100))
    short.feed(b"".join(iter_bytes(99)))
    assert short.finish() == "the body ended after 99 bytes; more were expected"
    long = BodyComparison(iter_bytes(100))
    long.feed(b"".join(iter_bytes(100)) + b"!")
    assert "longer than expected" in long.finish()
