"""What the plugin does with what the host sets: the magic cookie and the protocol versions."""

from __future__ import annotations

import re

from pluginconf.host.errors import LaunchError
from pluginconf.protocol.constants import ENV_PROTOCOL_VERSIONS
from pluginconf.runner import Profile, case, case_each, check, expect, fail
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.runner.timing import Yardstick

from .._helpers import Refusal, handshake_bytes, judge_bound, refusal, show

# An entry of PLUGIN_PROTOCOL_VERSIONS that no plugin can take for a version (HS-11).
_JUNK_VERSION = "not-a-version"


# How go-plugin's plugins say they will not run without their host (server.go, Serve).
_NOT_RUN_DIRECTLY = re.compile(
    r"not\s+(?:meant|intended|supposed|designed)\s+to\s+be\s+"
    r"(?:executed|run|started|launched|invoked)(?:\s+directly)?",
    re.IGNORECASE,
)
_HS9_BOUND_S = 5.0


def cookie_message_problem(stderr: str, cookie_key: str) -> str | None:
    """None when ``stderr`` is about the cookie (names its variable, or says "cookie") or
    says the program is a plugin not meant to be executed directly (go-plugin's message)."""
    if cookie_key in stderr or "cookie" in stderr.lower():
        return None
    if re.search(r"\bplugin\b", stderr, re.IGNORECASE) and _NOT_RUN_DIRECTLY.search(stderr):
        return None
    return (
        f"stderr neither mentions the cookie ({cookie_key}) nor says it is a plugin not meant "
        f"to be executed directly: {show(stderr, 400)}"
    )


@case_each(
    "plugin/handshake/magic-cookie-{}",
    ["missing", "wrong"],
    requirements=["HS-9"],
    profile=Profile.TRANSPORT,
)
async def magic_cookie_refused(t: PluginTarget, variant: str) -> None:
    """
    Purpose: A plugin started without its application's cookie ({value}) refuses to run, so
      that running it by hand explains itself instead of waiting for a host.
    Procedure: Start the plugin with the cookie variable {value}, otherwise as a host does;
      time its exit from its start. A time over 5 s is set beside a minimal process's start
      timed just then, and measured again (up to three times) before it counts.
    Asserts: It exits with status 1 within 5 s, writes nothing to stdout, leaves no socket
      (it never listened), and its stderr is about the cookie (names the variable or says
      "cookie") or says it is a plugin not meant to be executed directly.
    """
    cookie = t.options.magic_cookie
    value = None if variant == "missing" else cookie.value + "-wrong"
    seen: list[Refusal] = []

    async def refuse_once() -> float | None:
        fresh = await t.spawn(magic_cookie=None, env={cookie.key: value})
        seen.append(await refusal(fresh))
        return seen[-1].took_s

    timed = await judge_bound(
        _HS9_BOUND_S, refuse_once, Yardstick.START, "the exit after a start without the cookie"
    )
    first = seen[0]
    where = f"with the cookie {cookie.key}" + (" unset" if value is None else f"={value!r}")
    expect(first.exited, f"{where}: " + "; ".join(first.problems(1)))
    check(timed.met, f"{where}: {timed.evidence()}")
    for problem in first.problems(1):
        check(False, f"{where}: {problem}")
    message = cookie_message_problem(first.stderr, cookie.key)
    check(message is None, f"{where}: {message}")


async def _answered_version(t: PluginTarget, offered: str | None) -> int:
    """The APP version the plugin's handshake gives when offered ``offered`` (None: unset)."""
    env = {ENV_PROTOCOL_VERSIONS: offered}
    try:
        fresh = await t.launch(connect=False, env=env)
    except LaunchError as exc:
        if exc.line is None:
            fail(
                f"offered PLUGIN_PROTOCOL_VERSIONS={offered!r}, the plugin gave no "
                f"handshake:\n{exc}"
            )
        line = exc.line
    else:
        line = handshake_bytes(fresh.launched).decode("utf-8", "replace").strip()
        await fresh.close()
    fields = line.split("|")
    if len(fields) < 2 or not fields[1].isdigit():
        fail(f"offered {offered!r}, the handshake {line!r} has no APP version")
    return int(fields[1])


async def _supported(t: PluginTarget) -> list[int]:
    """The host's versions the plugin takes when each is offered alone."""
    offered = t.options.protocol_versions
    if len(offered) == 1:
        return list(offered)  # the shared process took it
    return [v for v in offered if await _answered_version(t, str(v)) == v]


@case("plugin/handshake/version-negotiation", requirements=["HS-10"], profile=Profile.TRANSPORT)
async def version_negotiation(t: PluginTarget) -> None:
    """
    Purpose: Host and plugin agree on the newest application protocol they share.
    Procedure: Find which of the host's versions the plugin takes when offered alone; then
      offer all of them, in reverse order, with a much higher version the plugin cannot know.
    Asserts: The plugin answers the highest of the versions it took (or the unknown one, if
      it really speaks it).
    """
    await t.shared(calls=False)
    supported = await _supported(t)
    expect(supported, f"the plugin took none of the versions {t.options.protocol_versions}")
    unknown = max(t.options.protocol_versions) + 1000
    offered = [*reversed(t.options.protocol_versions), unknown]
    answer = await _answered_version(t, ",".join(map(str, offered)))
    expect(
        answer in (max(supported), unknown),
        f"offered {offered}, the plugin answered {answer}; it takes {supported} one at a "
        f"time, so the highest common version is {max(supported)}",
    )


@case("plugin/handshake/version-none-common", requirements=["HS-10"], profile=Profile.TRANSPORT)
async def version_none_common(t: PluginTarget) -> None:
    """
    Purpose: Without a common version the plugin still answers, so that the host can report
      the mismatch with both sides' versions.
    Procedure: Offer only a version far above the host's; then start it with
      PLUGIN_PROTOCOL_VERSIONS unset.
    Asserts: Both times the plugin writes a handshake, offering a version no higher than the
      lowest of the host's versions it takes.
    """
    supported = await _supported(t)
    lowest = min(supported or t.options.protocol_versions)
    unknown = max(t.options.protocol_versions) + 1000
    for offered in (str(unknown), None):
        answer = await _answered_version(t, offered)
        expect(
            answer <= lowest or answer == unknown,
            f"offered {offered!r}, the plugin answered {answer}; with no common version it "
            f"must offer its lowest, and it takes {lowest}",
        )


@case(
    "plugin/handshake/version-invalid-entries",
    requirements=["HS-11"],
    profile=Profile.TRANSPORT,
)
async def version_invalid_entries(t: PluginTarget) -> None:
    """
    Purpose: A malformed entry in PLUGIN_PROTOCOL_VERSIONS does not stop negotiation.
    Procedure: Offer "not-a-version" followed by the host's versions.
    Asserts: The plugin negotiates as if the entry were absent and warns on stderr, naming
      the entry.
    """
    shared = await t.shared(calls=False)
    expected = shared.launched.handshake.app_version if shared.launched.handshake else None
    offered = ",".join([_JUNK_VERSION, *map(str, t.options.protocol_versions)])
    try:
        fresh = await t.launch(connect=False, env={ENV_PROTOCOL_VERSIONS: offered})
    except LaunchError as exc:
        fail(f"offered {offered!r}, the plugin did not start:\n{exc}")
    answer = fresh.handshake.app_version
    await fresh.close()
    stderr = fresh.stderr_text()
    check(
        answer == expected,
        f"offered {offered!r}, the plugin answered {answer}, "
        f"not {expected} as without the bad entry",
    )
    check(
        _JUNK_VERSION in stderr,
        f"offered {offered!r}, the plugin's stderr does not name the ignored entry: "
        f"{show(stderr, 400)}",
    )
