"""Hooks: payloads of every shape a valid call may carry, and the message size limit."""

from __future__ import annotations

from typing import Any

import grpc

from pluginconf.host.client import health_problem
from pluginconf.protocol.constants import GRPC_MAX_MESSAGE_BYTES
from pluginconf.protocol.hooks import LIFECYCLE_HOOKS
from pluginconf.runner import Profile, case, case_each, check, expect
from pluginconf.runner.plugin.http import exchange
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import NON_BMP, call_hook, hook_problem, large_text, requests_of


def _serve_http_requests(kind: str) -> list[dict[str, Any]]:
    if kind == "empty":
        return [{"method": "", "path": ""}]
    if kind == "unicode":
        return [
            {
                "method": "POST",
                "path": f"/pluginconf/{NON_BMP}/é",
                "query": f"q={NON_BMP}&=&x",
                "headers": [("x-pluginconf", [NON_BMP, "", "é"])],
                "body": f"{NON_BMP}\u2028".encode() * 100,
            }
        ]
    return [
        {
            "method": "POST",
            "path": "/pluginconf/large",
            "headers": [("x-large", [large_text(1024 * 1024)])],
            "body": b"\xa5" * (8 * 1024 * 1024),
        }
    ]


def _rule(code: grpc.StatusCode | None) -> str:
    """Which rule a failed hook call breaks: a refused size (TR-10), a failure that escaped
    the handler as neither an AppError nor INTERNAL (HK-10), or else the AppError rule."""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return "TR-10"
    if code == grpc.StatusCode.UNKNOWN:
        return "HK-10"
    return "HK-8"


@case_each(
    "plugin/hooks/payload-{}",
    ["empty", "unicode", "large"],
    requirements=["HK-8", "HK-10", "TR-10"],
    profile=Profile.HOOKS,
)
async def payloads(t: PluginTarget, kind: str) -> None:
    """
    Purpose: Valid but unusual requests ({value}: empty fields, text outside the Basic
      Multilingual Plane, or sizes close to the 4 MiB message limit) are ordinary calls.
    Procedure: Call every hook the shared process lists (but OnActivate and OnDeactivate)
      with {value} requests; ServeHTTP with an {value} request.
    Asserts: No request is refused for its size (TR-10); each hook answers with status OK
      (INTERNAL is tolerated for an unexpected failure), any AppError has a lower_snake_case
      code, each ServeHTTP response is framed correctly (HK-8); the plugin stays SERVING
      (HK-10).
    """
    shared = await t.shared()
    for hook, request in requests_of(kind).items():
        if hook not in shared.implemented or hook in LIFECYCLE_HOOKS:
            continue
        t.step(f"calling {hook} with a {kind} request")
        outcome = await call_hook(shared.hooks, hook, request)
        problem = hook_problem(outcome)
        check(problem is None, f"with a {kind} request: {problem}", requirement=_rule(outcome.code))
    if "ServeHTTP" in shared.implemented:
        for http_request in _serve_http_requests(kind):
            t.step(f"calling ServeHTTP with a {kind} request")
            response = await exchange(shared.hooks, **http_request)
            rule = "TR-10" if response.code == grpc.StatusCode.RESOURCE_EXHAUSTED else "HK-8"
            check(
                response.code == grpc.StatusCode.OK and not response.violations,
                f"with a {kind} request: ServeHTTP {http_request['method']!r} "
                f"{http_request['path']!r}: {response.describe()}; "
                + "; ".join(response.violations),
                requirement=rule,
            )
    problem = await health_problem(shared.health, 10.0)
    check(problem is None, f"after the {kind} requests: {problem}", requirement="HK-10")


@case("plugin/hooks/message-limit", requirements=["TR-11"], profile=Profile.HOOKS)
async def message_limit(t: PluginTarget) -> None:
    """
    Purpose: The plugin never sends a message over gRPC's 4 MiB default limit, which a
      default-configured host would refuse.
    Procedure: Call every hook the shared process lists (but OnActivate and OnDeactivate)
      with requests close to 4 MiB, and ServeHTTP with an 8 MiB body; the suite accepts up
      to 64 MiB, to see what comes.
    Asserts: Every response message is at most 4194304 bytes.
    """
    shared = await t.shared()
    problems = []
    for hook, request in requests_of("large").items():
        if hook not in shared.implemented or hook in LIFECYCLE_HOOKS:
            continue
        t.step(f"calling {hook} with a large request")
        outcome = await call_hook(shared.hooks, hook, request)
        if outcome.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            problems.append(f"{hook}: {outcome.describe()}")
        elif outcome.response is not None and outcome.response.ByteSize() > GRPC_MAX_MESSAGE_BYTES:
            problems.append(f"{hook} answered a {outcome.response.ByteSize()}-byte message")
    if "ServeHTTP" in shared.implemented:
        t.step("calling ServeHTTP with an 8 MiB body")
        response = await exchange(
            shared.hooks, "POST", "/pluginconf/large", body=b"\x5a" * (8 * 1024 * 1024)
        )
        if response.max_wire_bytes > GRPC_MAX_MESSAGE_BYTES:
            problems.append(f"ServeHTTP sent a {response.max_wire_bytes}-byte frame")
    expect(not problems, f"messages over {GRPC_MAX_MESSAGE_BYTES} bytes:\n" + "\n".join(problems))
