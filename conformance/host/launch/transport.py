"""Transport, host side: gRPC messages of 4 MiB are received, none larger is sent (TR-10,
TR-11)."""

from __future__ import annotations

import hashlib

from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.target import HostTarget

from .._helpers import command_answer

LIMIT = 4 * 1024 * 1024  # 4194304 bytes: gRPC's default receive limit
# An HTTP body larger than the limit, and not a multiple of 64 KiB.
BODY_BYTES = 6 * 1024 * 1024 + 12345
# The fake takes messages up to this size, so that a host's oversized ones are seen.
FAKE_RECEIVE_LIMIT = 64 * 1024 * 1024


@case("host/transport/receives-4mib", requirements=["TR-10"], profile=Profile.HOOKS)
async def receives_4mib(t: HostTarget) -> None:
    """
    Purpose: The host takes a message of exactly 4 MiB from a plugin, the largest gRPC's
      default receive limit lets through.
    Procedure: Load a fake whose ExecuteCommand answer is a message of exactly 4194304
      bytes (its text padded with 'x'); fire a command.
    Asserts: The host returns the plugin's answer whole: a text of the padded length, all
      'x', with response_type ephemeral.
    """
    plugin = await t.load({"command_response": {"message_bytes": LIMIT}})
    outcome = await plugin.command("/four-mib", timeout_s=60.0)
    answer = command_answer(outcome, plugin)
    # text field: tag, 4-byte length, text; response_type field: tag, length, "ephemeral".
    text_bytes = LIMIT - (1 + 4) - (1 + 1 + len("ephemeral"))
    expect(
        len(answer.text) == text_bytes and answer.text.count("x") == text_bytes,
        f"the plugin answered a 4194304-byte message with a text of {text_bytes} 'x'; the "
        f"host returned a text of {len(answer.text)} characters (TR-10)",
    )
    check(answer.response_type == "ephemeral", f"response_type {answer.response_type!r}")


@case("host/transport/sends-at-most-4mib", requirements=["TR-11"], profile=Profile.HOOKS)
async def sends_at_most_4mib(t: HostTarget) -> None:
    """
    Purpose: However large the data, the host splits it into messages a plugin with gRPC's
      default receive limit takes.
    Procedure: Load a fake that accepts messages up to 64 MiB and records the largest it
      received; POST a body of 6 MiB + 12345 bytes to its /sink through the host's HTTP
      front. Skipped when the host has no HTTP front.
    Asserts: The body arrived whole (size and SHA-256), and no request message the plugin
      received was larger than 4194304 bytes.
    """
    plugin = await t.load({"max_receive_bytes": FAKE_RECEIVE_LIMIT})
    url = plugin.url("/sink")
    body = bytes(range(256)) * (BODY_BYTES // 256) + b"\x01" * (BODY_BYTES % 256)
    t.step(f"posting {BODY_BYTES} bytes to /sink")
    response = await t.http().post(url, content=body)
    ended = await plugin.wait_event(
        "http_request_end", why="the fake should have received the whole request"
    )
    largest = int(ended.get("max_frame_bytes", 0))
    check(
        largest <= LIMIT,
        f"the host sent the plugin a request message of {largest} bytes, over the 4194304 "
        f"bytes a plugin with gRPC's default limit takes (TR-11: split large data)",
        requirement="TR-11",
    )
    digest = hashlib.sha256(body).hexdigest()
    expect(
        response.status_code == 200 and response.text.strip() == f"{BODY_BYTES} {digest}",
        f"the fake's /sink answered {response.status_code} {response.text[:200]!r}; expected "
        f"'{BODY_BYTES} {digest}' (the body whole)",
    )
