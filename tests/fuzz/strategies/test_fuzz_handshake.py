"""The handshake parser under Hypothesis: every line is a HandshakeLine or a HandshakeError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluginconf.fuzz.strategies.handshake import handshake_lines, malformed_lines
from pluginconf.protocol.handshake import HandshakeError, HandshakeLine, parse_handshake

EXAMPLES = settings(max_examples=300, deadline=None)


@EXAMPLES
@given(handshake_lines())
def test_a_well_formed_line_round_trips(line: HandshakeLine) -> None:
    assert parse_handshake(line.format() + "\n") == line


@EXAMPLES
@given(malformed_lines())
def test_a_malformed_line_is_refused_with_its_text(line: str) -> None:
    with pytest.raises(HandshakeError) as caught:
        parse_handshake(line)
    assert caught.value.line == line
    assert repr(line) in str(caught.value)


@EXAMPLES
@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_any_text_parses_or_is_a_handshake_error(line: str) -> None:
    with contextlib.suppress(HandshakeError):
        parse_handshake(line)


def test_non_ascii_digits_are_not_versions() -> None:
    # Found by the property above: "²".isdigit() is True, and int("²") raises ValueError.
    for version in ("\u00b2", "\u0663", "\uff11"):  # superscript two, Arabic-Indic, fullwidth
        with pytest.raises(HandshakeError, match="not a non-negative decimal integer"):
            parse_handshake(f"{version}|1|unix|/x|grpc")
