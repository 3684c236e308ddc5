"""AutoMTLS certificates of many processes: an encoding bug that shows for some certificate
lengths only slips past one sample."""

from __future__ import annotations

import asyncio

from pluginconf.host.errors import LaunchError
from pluginconf.runner import Profile, case, expect
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import handshake_bytes, show
from ._helpers import encoding_problems

# A P-256 certificate's DER length varies by a few bytes with its serial and signature, so
# its base64 padding (none, one '=' or two) varies across processes, each in at least a
# quarter of them. The case samples until it has seen all three, at most 12 processes (each
# missed by 12 with a chance under 1 in 1000), or 6 when all had the same length class.
_MAX_PROCESSES = 12
_SAME_CLASS_PROCESSES = 6
_AT_ONCE = 3


async def _field_six(t: PluginTarget) -> tuple[str, str]:
    """One new AutoMTLS process's handshake line and sixth field; the process is stopped."""
    try:
        fresh = await t.launch(auto_mtls=True, connect=False)
    except LaunchError as exc:
        return f"(rejected: {exc})", ""
    try:
        line = handshake_bytes(fresh.launched).decode("utf-8", "replace").rstrip("\r\n")
    finally:
        await fresh.close()
    fields = line.split("|")
    return line, fields[5] if len(fields) > 5 else ""


@case("plugin/mtls/certificate-encoding-samples", requirements=["HS-14"], profile=Profile.TRANSPORT)
async def certificate_encoding_samples(t: PluginTarget) -> None:
    """
    Purpose: Every process's certificate field is unpadded standard base64 of its DER
      certificate, whatever the certificate's length.
    Procedure: Start plugin processes with PLUGIN_CLIENT_CERT set, 3 at a time, and read each
      handshake's sixth field, until the fields have shown all three base64 length classes
      (12 processes at most; 6 when all had one class).
    Asserts: In every one, field 6 has no '=' padding, uses the standard alphabet and decodes
      to a DER certificate.
    """
    t.needs_auto_mtls()
    wrong: list[str] = []
    classes: set[int] = set()  # unpadded length mod 4: 0, 2 or 3 for DER lengths mod 3
    started = 0
    while started < _MAX_PROCESSES and len(classes) < 3:
        if started >= _SAME_CLASS_PROCESSES and len(classes) == 1:
            break
        for line, field in await asyncio.gather(*(_field_six(t) for _ in range(_AT_ONCE))):
            problems, _cert = encoding_problems(field)
            classes.add(len(field.rstrip("=")) % 4)
            if problems:
                wrong.append(f"handshake {show(line, 80)}: " + "; ".join(problems))
        started += _AT_ONCE
        if wrong:
            break
    expect(
        not wrong,
        f"{len(wrong)} of {started} processes sent a bad certificate field:\n" + "\n".join(wrong),
    )
