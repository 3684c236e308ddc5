"""ServeHTTP framing, for any plugin that implements it."""

from __future__ import annotations

import grpc

from pluginconf.runner import Profile, case, expect
from pluginconf.runner.plugin.http import exchange
from pluginconf.runner.plugin.target import PluginTarget


@case("plugin/serve-http/framing", requirements=["SH-12", "SH-13"], profile=Profile.HOOKS)
async def framing(t: PluginTarget) -> None:
    """
    Purpose: Every ServeHTTP response is framed so that a host can turn it into HTTP.
    Procedure: Make three exchanges with the shared process: GET /, HEAD / and a POST of
      100 KiB to a path the plugin is unlikely to know.
    Asserts: Each response starts with one init (status 200..599, each header name once),
      continues with body and flush frames, ends with exactly one end, and the call
      completes with OK and nothing after end.
    """
    shared = await t.shared_with("ServeHTTP")
    problems = []
    for method, path, body in (
        ("GET", "/", b""),
        ("HEAD", "/", b""),
        ("POST", "/pluginconf/no-such-route", b"\x01" * 100 * 1024),
    ):
        t.step(f"ServeHTTP {method} {path}")
        response = await exchange(shared.hooks, method, path, body=body)
        if response.code != grpc.StatusCode.OK:
            response.violations.append("the call did not complete with OK")
        if response.violations:
            problems.append(
                f"{method} {path}: {response.describe()}\n  " + "\n  ".join(response.violations)
            )
    expect(not problems, "\n".join(problems))
