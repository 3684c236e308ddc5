"""HTTP text on the wire (SPEC §14): method, path, query and header values travel as protobuf
strings; the sender decodes the bytes it got as UTF-8, or as ISO-8859-1 when they are not
valid UTF-8, and the receiver encodes the text back as UTF-8."""

from __future__ import annotations


def wire_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
