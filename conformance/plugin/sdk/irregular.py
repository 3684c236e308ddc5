"""The conformance plugin with irregular data: header values repeated, unsorted and empty;
frames and pieces that are not multiples of 64 KiB; an empty request frame."""

from __future__ import annotations

from pluginconf.reference.generator import iter_bytes
from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.plugin.http import exchange
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import echo_generated


@case(
    "plugin/sdk/headers/request-repeated-values",
    requirements=["RB-2", "SH-6", "SH-24"],
    profile=Profile.SDK,
)
async def request_repeated_values(t: PluginTarget) -> None:
    """
    Purpose: A request header with many values reaches the handler with every one of them,
      repeated, unsorted and empty ones included, whatever the case of its name.
    Procedure: POST to /echo with X-REPEATED: b, a, b, "", a, c (six values, two repeated, an
      empty one inside, out of order) and X-Count-Up: 1 to 9 (nine values).
    Asserts: x-echo-x-repeated and x-echo-x-count-up carry exactly those values in that
      order.
    """
    shared = await t.shared()
    sent = [
        ("X-REPEATED", ["b", "a", "b", "", "a", "c"]),
        ("X-Count-Up", [str(i) for i in range(1, 10)]),
    ]
    response = await exchange(shared.hooks, "POST", "/echo", headers=sent, body=b"x")
    wrong = []
    for name, values in sent:
        got = response.header(f"x-echo-{name.lower()}")
        if got != values:
            wrong.append(f"{name}: sent {values}, echoed {got}")
    expect(not wrong, f"{response.describe()}\n" + "\n".join(wrong), requirement="SH-24")


# Request frames of these sizes: one past a 64 KiB frame, one short of it, and a prime.
_FRAMES = (65537, 65535, 40009)


@case("plugin/sdk/echo/irregular-frames", requirements=["RB-2", "SH-24"], profile=Profile.SDK)
async def echo_irregular_frames(t: PluginTarget) -> None:
    """
    Purpose: The echo holds whatever the request's framing: frames that are not multiples of
      64 KiB, and an empty frame inside the body.
    Procedure: POST to /echo 3 x 65537 + 1 bytes (seed 11) in frames of 65537, then 65535,
      then 40009 bytes; then POST abc, an empty body frame, def, end.
    Asserts: Each echo equals its body byte for byte and ends without error (RB-2); the empty
      frame neither ends the body nor loses what follows it (SH-24: each body frame is an
      http.request event with more_body true, only end has more_body false).
    """
    shared = await t.shared()
    for frame in _FRAMES:
        n = 3 * 65537 + 1
        response = await echo_generated(shared.hooks, n, seed=11, piece=frame, timeout_s=60)
        problems = []
        if response.status != 200:
            problems.append(f"status {response.status}, expected 200")
        if response.comparison is not None:
            problems.append(f"the echoed body differs: {response.comparison}")
        if response.end_error:
            problems.append(f"the response ended with error {response.end_error!r}")
        check(
            not problems,
            f"POST /echo of {n} bytes in request frames of {frame}: {response.describe()}\n"
            + "\n".join(problems),
            requirement="RB-2",
        )
    response = await exchange(shared.hooks, "POST", "/echo", body=[b"abc", b"", b"def"])
    check(
        response.status == 200 and bytes(response.body) == b"abcdef",
        "POST /echo with body frames 'abc', '' (empty), 'def': echoed "
        f"{bytes(response.body)!r}, expected b'abcdef'; {response.describe()}",
        requirement="SH-24",
    )


# (n, chunk): pieces one past 64 KiB and one short, a prime, 1-byte pieces, and a piece
# larger than the body.
_CHUNKS = ((200_000, 65537), (200_000, 65535), (150_000, 40009), (300, 1), (70_000, 131073))


@case("plugin/sdk/bytes/irregular-chunks", requirements=["RB-3"], profile=Profile.SDK)
async def bytes_irregular_chunks(t: PluginTarget) -> None:
    """
    Purpose: /bytes is exact whatever piece size it is asked to send in.
    Procedure: GET /bytes?n=N&chunk=C&seed=5 for (N, C) = (200000, 65537), (200000, 65535),
      (150000, 40009), (300, 1) and (70000, 131073).
    Asserts: Each answers 200 with content-length N and exactly the generator's first N
      bytes for seed 5, ending without error.
    """
    shared = await t.shared()
    for n, chunk in _CHUNKS:
        response = await exchange(
            shared.hooks,
            "GET",
            "/bytes",
            query=f"n={n}&chunk={chunk}&seed=5",
            expected_body=iter_bytes(n, seed=5),
            keep_body=False,
            timeout_s=60,
        )
        problems = []
        if response.status != 200:
            problems.append(f"status {response.status}, expected 200")
        if response.comparison is not None:
            problems.append(f"the body differs: {response.comparison}")
        if response.end_error:
            problems.append(f"the response ended with error {response.end_error!r}")
        if response.header("content-length") != [str(n)]:
            problems.append(f"content-length {response.header('content-length')}, expected [{n}]")
        check(
            not problems,
            f"GET /bytes?n={n}&chunk={chunk}&seed=5: {response.describe()}\n" + "\n".join(problems),
        )
