"""ExecuteCommand answers: where the answer goes."""

from __future__ import annotations

from pluginconf.runner import Profile, case, check
from pluginconf.runner.plugin.target import PluginTarget
from pluginconf.v1 import hooks_pb2

from .._helpers import NON_BMP, call_hook

_RESPONSE_TYPES = ("ephemeral", "in_channel")
# Commands of the conformance plugin, an unknown one, and irregular command lines.
_COMMANDS = ("/echo hi", "/echo", "/lifecycle", "/posts", "/config", f"/echo {NON_BMP}", "", " ")


@case("plugin/hooks/command-response-type", requirements=["RR-4"], profile=Profile.HOOKS)
async def command_response_type(t: PluginTarget) -> None:
    """
    Purpose: Every command answer tells the host where it goes.
    Procedure: On the shared process, call ExecuteCommand with "/echo hi", "/echo" with no
      argument, "/lifecycle", "/posts", "/config", a non-BMP "/echo", an empty and a blank
      command line.
    Asserts: Each answer without an AppError has response_type "ephemeral" or "in_channel".
    """
    shared = await t.shared_with("ExecuteCommand")
    answered = 0
    for text in _COMMANDS:
        outcome = await call_hook(
            shared.hooks, "ExecuteCommand", hooks_pb2.ExecuteCommandRequest(command=text)
        )
        if not isinstance(outcome.response, hooks_pb2.ExecuteCommandResponse):
            continue  # a failed call is other cases' concern (HK-8)
        if outcome.response.HasField("error"):
            continue
        answered += 1
        kind = outcome.response.response_type
        check(
            kind in _RESPONSE_TYPES,
            f"ExecuteCommand({text!r}) answered response_type {kind!r}; expected one of "
            f"{', '.join(_RESPONSE_TYPES)}",
        )
