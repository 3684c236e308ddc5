"""The plugin target's properties: ServeHTTP round trips, hook payloads, the environment.

Each property states a rule for every input of a kind, where the plugin suite's cases check
it for a few chosen ones. Every example also ends with the plugin healthy (plugin/context.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator

import grpc
from hypothesis import given
from hypothesis import strategies as st

from pluginconf.fuzz.model import (
    FuzzProperty,
    FuzzTarget,
    HypothesisTest,
    PropertyFailed,
    PropertyNotApplicable,
)
from pluginconf.fuzz.plugin.context import PluginFuzzContext
from pluginconf.fuzz.strategies.http import (
    FuzzBody,
    FuzzRequest,
    any_requests,
    bodies,
    body_sizes,
    http_requests,
)
from pluginconf.fuzz.strategies.payloads import hook_requests
from pluginconf.host.errors import LaunchError
from pluginconf.host.launcher import spawn
from pluginconf.protocol.constants import ENV_PROTOCOL_VERSIONS, GRPC_MAX_MESSAGE_BYTES
from pluginconf.protocol.hooks import LIFECYCLE_HOOKS
from pluginconf.reference.generator import iter_bytes
from pluginconf.runner.model import Profile
from pluginconf.runner.plugin.http import HTTPResponse, exchange

# Bounds on one example: generous, as deadlock guards (an echo of 8 MiB takes well under 1 s).
EXCHANGE_BOUND_S = 30.0
HOOK_DEADLINE_S = 5.0
# Hooks the properties call with any payload: lifecycle calls a host makes once are left out.


async def send_request(
    ctx: PluginFuzzContext,
    request: FuzzRequest,
    body: FuzzBody | None = None,
    data: bytes = b"",
    expected_body: bytes | None = None,
    expected_stream: list[bytes] | None = None,
) -> HTTPResponse:
    """One ServeHTTP exchange in full duplex, ``data`` framed and paced as ``body`` says."""
    plugin = await ctx.plugin()

    async def frames() -> AsyncIterator[bytes]:
        if body is None:
            return
        for index, frame in enumerate(body.frames(data)):
            pause = body.pause_before(index)
            if pause:
                await asyncio.sleep(pause)
            yield frame

    return await exchange(
        plugin.hooks,
        request.method,
        request.path,
        query=request.raw_query,
        headers=request.header_pairs(),
        body=frames(),
        content_length=len(data),
        expected_body=[expected_body] if expected_body is not None else expected_stream,
        keep_body=False,
        timeout_s=EXCHANGE_BOUND_S,
    )


def framing_problems(response: HTTPResponse) -> list[str]:
    problems = list(response.violations)
    if response.code != grpc.StatusCode.OK:
        code = response.code.name if response.code is not None else "no status"
        problems.append(f"the call ended {code}: {response.details}")
    too_big = [f for f in response.frames if f.wire_bytes > GRPC_MAX_MESSAGE_BYTES]
    if too_big and not any("TR-11" in p for p in problems):
        problems.append(f"{len(too_big)} response frame(s) over {GRPC_MAX_MESSAGE_BYTES} bytes")
    return problems


def _fail(what: str, problems: list[str], response: HTTPResponse) -> None:
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise PropertyFailed(f"{what}:\n{listed}\nresponse: {response.describe()}")


def echo_problems(request: FuzzRequest, response: HTTPResponse) -> list[str]:
    """What /echo got wrong (RB-2): status, body (compared as it arrived), and headers."""
    problems = framing_problems(response)
    if response.status != 200:
        problems.append(f"status {response.status}, expected 200")
    if response.comparison is not None:
        problems.append(f"the echoed body differs: {response.comparison}")
    if response.end_error:
        problems.append(f"the response ended with error {response.end_error!r}")
    # A request header named "method" shares x-echo-method with the method: its values
    # come first, as the handler sends them.
    expected: dict[str, list[str]] = {}
    for name, values in request.headers:
        expected.setdefault("x-echo-" + name.lower(), []).extend(values)
    for name, value in (("method", request.method), ("path", request.path)):
        expected.setdefault("x-echo-" + name, []).append(value)
    expected.setdefault("x-echo-query", []).append(request.raw_query)
    for name, wanted in expected.items():
        got = response.header(name)
        if got != wanted:
            problems.append(f"header {name}: expected {wanted!r}, got {got!r}")
    return problems


def _echo(ctx: PluginFuzzContext) -> HypothesisTest:
    @given(request=http_requests(path="/echo"), body=bodies(max_size=ctx.max_body))
    def echo_roundtrip(request: FuzzRequest, body: FuzzBody) -> None:
        ctx.example()

        async def check() -> None:
            data = body.data()
            response = await send_request(ctx, request, body, data, expected_body=data)
            _fail(f"POST /echo of {body.describe()}", echo_problems(request, response), response)
            await ctx.check_healthy("the echo")

        ctx.run(check(), EXCHANGE_BOUND_S + 15, "the echo exchange")

    return echo_roundtrip


def _bytes(ctx: PluginFuzzContext) -> HypothesisTest:
    @given(
        n=body_sizes(ctx.max_body),
        chunk=st.one_of(st.sampled_from([65536, 4 * 1024 * 1024]), st.integers(1, 4 * 1024 * 1024)),
        seed=st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    )
    def bytes_exact(n: int, chunk: int, seed: int) -> None:
        ctx.example()
        # Very small handler pieces make millions of frames; keep each example quick.
        chunk = max(chunk, n // 2048, 1)

        async def check() -> None:
            request = FuzzRequest("GET", "/bytes", f"n={n}&chunk={chunk}&seed={seed}", ())
            response = await send_request(
                ctx, request, expected_stream=list(iter_bytes(n, seed, 1 << 20))
            )
            problems = framing_problems(response)
            if response.status != 200:
                problems.append(f"status {response.status}, expected 200")
            if response.comparison is not None:
                problems.append(f"the body differs from the generator's: {response.comparison}")
            if response.header("content-length") != [str(n)]:
                problems.append(
                    f"content-length {response.header('content-length')!r}, expected [{n!r}]"
                )
            _fail(f"GET /bytes?{request.raw_query}", problems, response)
            await ctx.check_healthy("the /bytes request")

        ctx.run(check(), EXCHANGE_BOUND_S + 15, "the /bytes exchange")

    return bytes_exact


def _any_request(ctx: PluginFuzzContext) -> HypothesisTest:
    @given(request=any_requests(), body=bodies(max_size=min(ctx.max_body, 200_000)))
    def any_request(request: FuzzRequest, body: FuzzBody) -> None:
        ctx.example()

        async def check() -> None:
            plugin = await ctx.plugin()
            if "ServeHTTP" not in plugin.implemented:
                return
            response = await send_request(ctx, request, body, body.data())
            problems = framing_problems(response)
            if not response.ended:
                problems.append("the response has no end frame")
            _fail(
                f"{request.method} {request.path}?{request.raw_query} with {body.describe()}",
                problems,
                response,
            )
            await ctx.check_healthy("the request")

        ctx.run(check(), EXCHANGE_BOUND_S + 15, "the exchange")

    return any_request


def _hooks(ctx: PluginFuzzContext) -> HypothesisTest:
    implemented = ctx.run(_implemented(ctx), 60, "starting the plugin")
    callable_hooks = [h for h in implemented if h not in LIFECYCLE_HOOKS and h != "ServeHTTP"]
    if not callable_hooks:
        raise PropertyNotApplicable(f"the plugin implements no hook to call ({implemented})")

    @given(call=hook_requests(callable_hooks))
    def any_payload(call: tuple[str, object]) -> None:
        ctx.example()
        hook, message = call

        async def check() -> None:
            plugin = await ctx.plugin()
            try:
                await getattr(plugin.hooks, hook)(message, timeout=HOOK_DEADLINE_S)
            except grpc.aio.AioRpcError as exc:
                # HK-10: an unexpected failure may end the call INTERNAL; nothing else may.
                if exc.code() != grpc.StatusCode.INTERNAL:
                    how = (
                        f"hung past its {HOOK_DEADLINE_S:g}s deadline"
                        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                        else f"ended {exc.code().name}: {exc.details()}"
                    )
                    raise PropertyFailed(
                        f"{hook} {how}; a hook must answer, with an AppError for an application "
                        "failure (HK-8, HK-10)"
                    ) from None
            await ctx.check_healthy(f"the {hook} call")

        ctx.run(check(), HOOK_DEADLINE_S + 15, f"the {hook} call")

    return any_payload


async def _implemented(ctx: PluginFuzzContext) -> tuple[str, ...]:
    return (await ctx.plugin()).implemented


# A decimal integer as HS-2 writes them, and go's strconv.Atoi reads them: ASCII digits.
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_version_entries = st.one_of(
    st.integers(0, 3).map(str),
    # Whitespace around versions hosts really use (1; Terraform's 5 and 6): taken or ignored.
    st.builds(
        "{}{}{}".format, st.sampled_from(["", " "]), st.integers(0, 7), st.sampled_from(["", " "])
    ),
    st.sampled_from(
        ["", " ", "1 ", " 2", "01", "+1", "-1", "1_0", "1.0", "0x1", "\u0661", "\uff11"]
    ),
    st.text(st.characters(exclude_categories=["Cs", "Cc"], exclude_characters=","), max_size=6),
)
protocol_versions_values = st.lists(_version_entries, max_size=5).map(",".join)


def _environment(ctx: PluginFuzzContext) -> HypothesisTest:
    @given(value=protocol_versions_values)
    def protocol_versions(value: str) -> None:
        ctx.example()
        ctx.run(check_versions(ctx, value), ctx.options.start_timeout_s + 15, "the launch")

    return protocol_versions


def _go_quoted(text: str) -> str:
    """``text`` inside Go's %q quotes, for printable text: backslashes and quotes escaped."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


_ESCAPE = re.compile(r"\\(U[0-9a-fA-F]{8}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[abfnrtv\\'\"])")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescaped(text: str) -> str:
    """``text`` with quoting escapes undone, so that an entry quoted rune by rune (Go's %q
    escapes only the runes its own Unicode tables call unprintable) is found as it was."""

    def undo(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "Uux":
            point = int(code[1:], 16)
            return chr(point) if point <= 0x10FFFF else match.group(0)
        return _SIMPLE_ESCAPES.get(code, code)

    return _ESCAPE.sub(undo, text)


async def check_versions(ctx: PluginFuzzContext, value: str) -> None:
    """HS-10, HS-11: any PLUGIN_PROTOCOL_VERSIONS gives a handshake, and each entry that is
    not a decimal integer is ignored with a warning on stderr. An entry with whitespace
    around a decimal integer may be taken as that integer or ignored (go-plugin ignores it,
    and warns)."""
    tmpdir = tempfile.mkdtemp(prefix="pluginconf-tmp-")
    spec = ctx.options.launch_spec(
        tmpdir, env={ENV_PROTOCOL_VERSIONS: value}, protocol_versions=tuple(range(0, 64))
    )
    launched = await spawn(spec)
    try:
        try:
            line = await launched.read_handshake()
        except LaunchError as exc:
            raise PropertyFailed(
                f"with {ENV_PROTOCOL_VERSIONS}={value!r} the plugin gave no usable handshake: "
                f"{exc}; it must offer a version whatever the variable holds (HS-10, HS-11)"
            ) from None
        entries = value.split(",")
        offered = {int(e) for e in entries if _DECIMAL.fullmatch(e)}
        # Whitespace around a decimal: the plugin may take it or leave it (HS-11).
        padded = [e for e in entries if e != e.strip() and _DECIMAL.fullmatch(e.strip())]
        either = offered | {int(e) for e in padded}
        if ctx.options.effective_profile.includes(Profile.SDK) and line.app_version != 1:
            raise PropertyFailed(
                f"with {ENV_PROTOCOL_VERSIONS}={value!r} the conformance plugin (version 1 "
                f"only) offered {line.app_version}"
            )
        if line.app_version not in either and offered & set(ctx.options.protocol_versions):
            raise PropertyFailed(
                f"with {ENV_PROTOCOL_VERSIONS}={value!r} the plugin offered version "
                f"{line.app_version}, although the host offered {sorted(offered)} (HS-10)"
            )
        bad = [e for e in entries if e.strip() and not _DECIMAL.fullmatch(e.strip())]
        if bad:
            # Give the warning a moment to reach the pipe: stderr is not ordered with stdout.
            await launched.wait_exit(0.3)
            stderr = "\n".join(launched.stderr_tail)
            # The entry as it was or trimmed, or quoted with escapes (as repr or ascii write
            # it, or Go's %q: go-plugin's warning), whole or rune by rune.
            seen = (stderr, _unescaped(stderr))
            missing = [
                e
                for e in bad
                if not any(
                    f in text
                    for text in seen
                    for raw in (e, e.strip())
                    for f in (raw, repr(raw)[1:-1], ascii(raw)[1:-1], _go_quoted(raw))
                )
            ]
            if missing:
                raise PropertyFailed(
                    f"with {ENV_PROTOCOL_VERSIONS}={value!r} the plugin did not warn about "
                    f"the entries {missing!r}, which are not decimal integers (HS-11); "
                    f"stderr was:\n{stderr or '(empty)'}"
                )
    finally:
        with contextlib.suppress(Exception):
            await launched.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)


PROPERTIES = (
    FuzzProperty(
        "serve-http/echo-roundtrip",
        FuzzTarget.PLUGIN,
        "/echo returns any body byte for byte, however it is framed and paced, with every "
        "request header, the method, path and raw query echoed exactly; no frame over 4 MiB",
        ("RB-2", "SH-12", "SH-13", "SH-24", "TR-11", "HK-14"),
        _echo,
        profile=Profile.SDK,
    ),
    FuzzProperty(
        "serve-http/bytes-exact",
        FuzzTarget.PLUGIN,
        "/bytes?n=N&chunk=C&seed=S returns exactly N generator bytes with content-length N, "
        "in frames under 4 MiB, for any N, C and S",
        ("RB-3", "SH-12", "TR-11"),
        _bytes,
        profile=Profile.SDK,
    ),
    FuzzProperty(
        "serve-http/any-request",
        FuzzTarget.PLUGIN,
        "any request (any method, path, query and headers, framing headers included) gets a "
        "well-framed response, and the plugin stays healthy",
        ("SH-12", "SH-13", "SH-22", "TR-11", "HL-2"),
        _any_request,
        profile=Profile.HOOKS,
        scale=0.5,
    ),
    FuzzProperty(
        "hooks/any-payload",
        FuzzTarget.PLUGIN,
        "every implemented hook but OnActivate and OnDeactivate answers any request message "
        "(edge values, non-BMP text, unknown enum values) within its deadline, OK or INTERNAL, "
        "and the plugin stays healthy",
        ("HK-8", "HK-10", "HK-14", "HK-15", "HL-2"),
        _hooks,
        profile=Profile.HOOKS,
    ),
    FuzzProperty(
        "handshake/protocol-versions-env",
        FuzzTarget.PLUGIN,
        "whatever PLUGIN_PROTOCOL_VERSIONS holds, the plugin handshakes, picks from the decimal "
        "entries (an entry with whitespace around one may count or not), and warns on stderr "
        "about each entry that is not one",
        ("HS-10", "HS-11", "HS-12", "HS-13"),
        _environment,
        profile=Profile.TRANSPORT,
        scale=0.02,
    ),
)
