"""Strategies for handshake lines: well-formed ones, and the ways a plugin can get one wrong.

A host reads the line from a process it does not trust, so its parser must turn every line into
either a HandshakeLine or a HandshakeError that names the problem, never another exception.
"""

from __future__ import annotations

import base64

from hypothesis import strategies as st

from pluginconf.protocol.handshake import NETWORKS, PROTOCOL_GRPC, HandshakeLine

versions = st.integers(min_value=0, max_value=2**31 - 1)
unix_addresses = st.text(
    st.characters(exclude_characters="|\r\n", exclude_categories=["Cs"]), min_size=1
).map(lambda tail: "/" + tail)
tcp_addresses = st.integers(min_value=1, max_value=65535).map(lambda port: f"127.0.0.1:{port}")


@st.composite
def handshake_lines(draw: st.DrawFn) -> HandshakeLine:
    """A well-formed handshake, with or without a server certificate."""
    network = draw(st.sampled_from(NETWORKS))
    address = draw(unix_addresses if network == "unix" else tcp_addresses)
    cert = draw(st.none() | st.binary(min_size=1, max_size=600))
    return HandshakeLine(draw(versions), draw(versions), network, address, PROTOCOL_GRPC, cert)


# Text that looks like a number to a careless parser: signs, spaces, non-ASCII digits.
not_decimal = st.sampled_from(
    ["", "-1", "+1", " 1", "1 ", "1.0", "0x1", "1_0", "\u00b2", "\u0663", "\uff11"]
)


@st.composite
def malformed_lines(draw: st.DrawFn) -> str:
    """A line that is not a usable handshake, made by breaking one field of a good one."""
    fields = draw(handshake_lines()).format().split("|")
    how = draw(st.sampled_from(("fields", "core", "app", "network", "address", "protocol", "cert")))
    if how == "fields":
        count = draw(st.sampled_from([1, 2, 3, 4, 7, 8]))
        fields = (fields + ["x"] * 8)[:count]
    elif how in ("core", "app"):
        fields[0 if how == "core" else 1] = draw(not_decimal)
    elif how == "network":
        fields[2] = draw(st.text(max_size=8).filter(lambda n: n not in NETWORKS and "|" not in n))
    elif how == "address":
        fields[3] = ""
    elif how == "protocol":
        fields[4] = ""
    else:
        junk = draw(st.text(min_size=1, max_size=40).filter(lambda t: "|" not in t))
        fields = [*fields[:5], _not_base64(junk)]
    return "|".join(fields)


def _not_base64(text: str) -> str:
    """``text`` made certain not to decode as base64 (a character outside the alphabet)."""
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return text
    return text + "*"
