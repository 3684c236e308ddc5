"""What serve() checks of a plugin before it starts, and of each hook's answer.

A sync hook, a hook that takes the wrong arguments, or a method named after the RPC instead
of the hook would otherwise surface as a failure of every call, far from its cause.
"""

from __future__ import annotations

import inspect
from typing import Any

from google.protobuf.message import Message

from pluginconf.plugin.base import Plugin
from pluginconf.plugin.errors import AppError, ServeConfigError
from pluginconf.v1 import hooks_pb2

# Hook RPC name -> the response message its method must return.
RESPONSE_TYPES: dict[str, type[Message]] = {
    "OnConfigurationChange": hooks_pb2.OnConfigurationChangeResponse,
    "OnActivate": hooks_pb2.OnActivateResponse,
    "OnDeactivate": hooks_pb2.OnDeactivateResponse,
    "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedResponse,
    "MessageWillBePosted": hooks_pb2.MessageWillBePostedResponse,
    "ExecuteCommand": hooks_pb2.ExecuteCommandResponse,
}


def _request_type(rpc: str) -> str:
    return f"hooks_pb2.{rpc}Request"


def _response_type(rpc: str) -> str:
    return f"hooks_pb2.{RESPONSE_TYPES[rpc].__name__}"


def hook_signature(rpc: str) -> str:
    """How the hook must be written, for messages."""
    method = Plugin.HOOK_METHODS[rpc]
    if rpc == "ServeHTTP":
        return f"def {method}(self) -> ASGIApp | None"
    return f"async def {method}(self, request: {_request_type(rpc)}) -> {_response_type(rpc)}"


def _overridden(plugin: Plugin, method: str) -> Any | None:
    """The plugin's own ``method`` (on its class or the instance), or None if inherited."""
    attr = getattr(plugin, method)
    if getattr(attr, "__func__", attr) is getattr(Plugin, method):
        return None
    return attr


def _is_async(func: Any) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004  # an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _takes(func: Any, count: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return True  # nothing to check against (a builtin): let the call decide
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def check_plugin(plugin: Plugin) -> None:
    """Raise ServeConfigError naming the first hook written so that it cannot be served."""
    if not isinstance(plugin, Plugin):
        raise ServeConfigError(
            f"serve() needs an instance of pluginconf.plugin.Plugin, got {type(plugin).__name__}"
        )
    problems = []
    for rpc, method in Plugin.HOOK_METHODS.items():
        func = _overridden(plugin, method)
        if func is None:
            if callable(getattr(plugin, rpc, None)):
                problems.append(
                    f"{type(plugin).__name__}.{rpc} is named after the RPC: hooks are "
                    f"methods named in snake case, {hook_signature(rpc)}"
                )
            continue
        where = f"{type(plugin).__name__}.{method}"
        if rpc == "ServeHTTP":
            if _is_async(func):
                problems.append(
                    f"{where} is async: it must return the ASGI application itself, "
                    f"{hook_signature(rpc)}"
                )
            elif not _takes(func, 0):
                problems.append(f"{where} takes arguments: write it as {hook_signature(rpc)}")
            continue
        if not callable(func):
            problems.append(f"{where} is not a method: write it as {hook_signature(rpc)}")
        elif not _is_async(func):
            problems.append(
                f"hook {rpc}: {where} is a plain def; hooks must be coroutines, "
                f"{hook_signature(rpc)}"
            )
        elif not _takes(func, 1):
            problems.append(
                f"hook {rpc}: {where}{_shown(func)} cannot be called with the request "
                f"alone; write it as {hook_signature(rpc)}"
            )
    if problems:
        raise ServeConfigError("; ".join(problems))


def _shown(func: Any) -> str:
    """The parameters by name only: string annotations would quote every type."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return ""
    return "(" + ", ".join(str(p.replace(annotation=p.empty)) for p in parameters) + ")"


def check_response(rpc: str, result: object) -> AppError | None:
    """The error to answer when a hook returned something other than its response type."""
    expected = RESPONSE_TYPES[rpc]
    if isinstance(result, expected):
        return None
    got = "None" if result is None else f"a {type(result).__module__}.{type(result).__name__}"
    return AppError(
        "internal",
        f"hook {rpc} ({Plugin.HOOK_METHODS[rpc]}) returned {got}; expected a "
        f"{_response_type(rpc)} (return {_response_type(rpc)}() for an empty answer)",
    )
