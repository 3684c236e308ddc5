"""The handshake line as go-plugin plugins print it: six fields, the sixth empty without
AutoMTLS, or the plugin's certificate in base64 without padding (HS-19)."""

from __future__ import annotations

import asyncio

from pluginconf.fake.scenario.spec import CertificatePadding
from pluginconf.runner import Profile, case, check, expect, skip
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_status
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer


async def handshake_line(plugin: FakePlugin) -> str:
    event = await plugin.wait_event("handshake", why="the fake should have written its handshake")
    return str(event.get("line", ""))


async def expect_taken(plugin: FakePlugin, what: str, requirement: str) -> None:
    """The host takes the plugin: it becomes active and answers a command."""
    status = await plugin.wait_status(
        lambda s: s.state in ("active", "failed", "crashed"), "active", timeout_s=30.0
    )
    expect(
        status.state == "active",
        f"the host refused a plugin whose handshake line is {what} ({requirement})\n"
        f"{describe_status(status)}\n{plugin.evidence()}",
        requirement=requirement,
    )
    command_answer(await plugin.command("/after-handshake"), plugin)


@case("host/handshake/empty-sixth-field", requirements=["HS-19"], profile=Profile.HOOKS)
async def empty_sixth_field(t: HostTarget) -> None:
    """
    Purpose: Every go-plugin plugin without AutoMTLS ends its handshake line with an empty
      sixth field ("1|1|unix|/path|grpc|"); a host takes it as the five-field line.
    Procedure: Load, without AutoMTLS, a fake whose handshake line has six fields, the sixth
      empty, as go-plugin's server prints it. Skipped under --auto-mtls always.
    Asserts: The line the fake wrote ends in '|'; the plugin becomes active and answers a
      command.
    """
    if t.always_auto_mtls:
        skip("--auto-mtls always: a plugin under AutoMTLS must send its certificate in field 6")
    plugin = await t.load({"tls": {"sixth_field": "empty"}}, wait_active=False)
    line = await handshake_line(plugin)
    expect(line.endswith("|") and line.count("|") == 5, f"the fake wrote {line!r}")
    await expect_taken(plugin, f"{line!r} (six fields, the sixth empty)", "HS-19")


# The '=' the base64 of the certificate's DER would end with; the line carries none (HS-14).
PADDINGS: tuple[CertificatePadding, ...] = (0, 1, 2)


@case("host/handshake/unpadded-certificate", requirements=["HS-19"], profile=Profile.HOOKS)
async def unpadded_certificate(t: HostTarget) -> None:
    """
    Purpose: The certificate in field 6 is base64 without padding, whatever its length; a
      host decodes every length, not only those whose base64 needs no '='.
    Procedure: With AutoMTLS, load three fakes whose certificates' DER lengths leave 0, 1
      and 2 '=' of padding off their base64 (the length modulo 3 differs). Skipped when the
      host has no AutoMTLS.
    Asserts: No line carries '='; each plugin becomes active and answers a command.
    """
    t.require_auto_mtls()
    plugins = []
    for padding in PADDINGS:
        plugins.append(
            await t.load(
                {"tls": {"certificate_padding": padding}},
                name=f"pad{padding}",
                auto_mtls=True,
                enable=False,
            )
        )
    await asyncio.gather(*(p.enable() for p in plugins))
    for padding, plugin in zip(PADDINGS, plugins, strict=True):
        line = await handshake_line(plugin)
        check("=" not in line.split("|")[-1], f"the fake wrote padding: {line!r}")
        what = f"with a certificate whose base64 lacks {padding} '=' of padding: {line[:60]!r}..."
        await expect_taken(plugin, what, "HS-19")
