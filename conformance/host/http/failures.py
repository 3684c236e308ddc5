"""What the HTTP client sees when something fails: a crash, an inactive or a non-HTTP plugin."""

from __future__ import annotations

import email.utils
import time

import httpx

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget

from ._helpers import response_evidence


def _retry_after_s(value: str) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date; None if neither."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


# -- failures ---------------------------------------------------------------------------------


@case("host/serve-http/crash-before-response", requirements=["SE-5"], profile=Profile.HOOKS)
async def crash_before_response(t: HostTarget) -> None:
    """
    Purpose: A plugin that dies before answering gives the client a gateway error.
    Procedure: Load a fake that exits during every ServeHTTP call, before sending anything;
      GET /echo.
    Asserts: The client gets status 502.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load({"crash": {"on": "ServeHTTP"}})
    t.step("GET /echo from a plugin that exits during ServeHTTP")
    response = await t.http().get(plugin.url("/echo"))
    expect(
        response.status_code == 502,
        f"the plugin exited before its response began; the client got "
        f"{response.status_code}, expected 502 (SE-5)\n"
        f"{response_evidence(response, response.content)}\n{plugin.evidence()}",
    )


@case(
    "host/serve-http/crash-after-start",
    requirements=["SE-6", "SE-11"],
    profile=Profile.HOOKS,
)
async def crash_after_start(t: HostTarget) -> None:
    """
    Purpose: A response cut short by the plugin's death never looks complete to the client.
    Procedure: Load a fake that exits after sending 100000 body bytes of any response; GET
      /bytes?n=1000000 (Content-Length 1000000) and read it to the end.
    Asserts: The status is 200 and reading the body fails (the connection is closed before
      the announced length or the final chunk); what did arrive is at most 100000 bytes,
      the start of the generated stream.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load({"crash": {"during_http_after_bytes": 100000}})
    body = bytearray()
    failure = ""
    t.step("reading /bytes?n=1000000 from a plugin that exits after 100000 bytes")
    async with t.http().stream("GET", plugin.url("/bytes?n=1000000")) as response:
        try:
            async for chunk in response.aiter_raw():
                body += chunk
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {exc}"
    evidence = (
        f"{response_evidence(response)}\n  {len(body)} body bytes read"
        f"{', then ' + failure if failure else ', then a normal end'}\n{plugin.evidence()}"
    )
    expect(
        response.status_code == 200,
        f"the plugin's response had started (200) when it exited; the client must get that "
        f"response, aborted, not another status (SE-6)\n{evidence}",
    )
    expect(
        failure,
        "the plugin exited after 100000 of the 1000000 bytes it announced, yet the client got "
        "a response that ended normally (SE-6: abort it; SE-11: never complete a body short "
        f"of its Content-Length)\n{evidence}",
    )
    expected = b"".join(iter_bytes(min(len(body), 100000)))
    expect(
        len(body) <= 100000 and bytes(body[:100000]) == expected,
        f"the client read {len(body)} bytes, but the plugin sent only the first 100000 bytes "
        f"of the generated stream{' (they differ)' if len(body) <= 100000 else ''} (SE-10, "
        f"SE-11)\n{evidence}",
    )


@case("host/serve-http/inactive-503", requirements=["SE-3"], profile=Profile.HOOKS)
async def inactive_503(t: HostTarget) -> None:
    """
    Purpose: A known plugin that is not running answers "try again later".
    Procedure: Load one fake without enabling it, and another that is enabled, then disabled;
      GET /echo on each.
    Asserts: Both answers are 503 with a Retry-After of at least 1 second; neither fake
      received a ServeHTTP call.
    """
    t.require(Capability.HTTP_FRONT)
    never = await t.load(name="never", enable=False)
    stopped = await t.load(name="stopped")
    status = await stopped.disable()
    problems = []
    for plugin, what in ((never, "never enabled"), (stopped, "disabled")):
        t.step(f"GET /echo on the {what} plugin")
        response = await t.http().get(plugin.url("/echo"))
        retry = response.headers.get("retry-after")
        seconds = _retry_after_s(retry) if retry is not None else None
        if response.status_code != 503 or seconds is None or seconds < 1:
            problems.append(
                f"{plugin.plugin_id!r} ({what}): expected 503 with Retry-After >= 1 s, got\n"
                f"{response_evidence(response, response.content)}"
            )
        if plugin.calls("ServeHTTP"):
            problems.append(f"{plugin.plugin_id!r} ({what}) received a ServeHTTP call")
    expect(
        not problems,
        "SE-3:\n" + "\n".join(problems) + f"\n{describe_status(status)}\n{stopped.evidence()}",
    )


@case("host/serve-http/not-implemented-404", requirements=["SE-2"], profile=Profile.HOOKS)
async def not_implemented_404(t: HostTarget) -> None:
    """
    Purpose: Requests for a plugin that does not serve HTTP, or does not exist, get 404.
    Procedure: Load a fake implementing OnActivate and ExecuteCommand only; POST to its /echo
      and GET /plugins/ID-unknown/echo for an id no plugin has.
    Asserts: Both answers are 404, and the fake received no ServeHTTP call.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load({"hooks": ["OnActivate", "ExecuteCommand"]})
    problems = []
    t.step("POST /echo to a plugin without ServeHTTP")
    response = await t.http().post(plugin.url("/echo"), content=b"not served")
    if response.status_code != 404:
        problems.append(
            f"a plugin whose Implemented lacks ServeHTTP: expected 404, got\n"
            f"{response_evidence(response, response.content)}"
        )
    unknown = f"{t.http_base_url}/plugins/{plugin.plugin_id}-unknown/echo"
    response = await t.http().get(unknown)
    if response.status_code != 404:
        problems.append(
            f"an unknown plugin id: expected 404, got\n"
            f"{response_evidence(response, response.content)}"
        )
    if plugin.calls("ServeHTTP"):
        problems.append("the plugin received a ServeHTTP call it does not implement")
    expect(not problems, "SE-2:\n" + "\n".join(problems) + f"\n{plugin.evidence()}")


@case("host/serve-http/no-deadline", requirements=["SH-23"], profile=Profile.HOOKS)
async def no_deadline(t: HostTarget) -> None:
    """
    Purpose: An HTTP exchange may outlast the hook deadline: downloads and long polls do.
    Procedure: Load a fake with a 500 ms hook deadline and GET /drip?n=4&ms=500, a response
      that takes about 2 s.
    Asserts: The response is 200 with all four pieces.
    """
    t.require(Capability.HTTP_FRONT)
    plugin = await t.load(hook_timeout_s=0.5)
    t.step("GET /drip?n=4&ms=500 against a 500 ms hook deadline")
    response = await t.http().get(plugin.url("/drip?n=4&ms=500"))
    want = b"".join(f"piece {i}\n".encode() for i in range(1, 5))
    expect(
        response.status_code == 200 and response.content == want,
        f"a 2 s exchange came back {response.status_code} with {response.content[:200]!r}, "
        f"expected 200 and {want!r}: the host must put no deadline on ServeHTTP (SH-23)\n"
        f"{plugin.evidence()}",
    )
