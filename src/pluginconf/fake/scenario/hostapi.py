"""Scenario keys for HostAPI calls and broker behaviours: ``host_api`` and ``broker``.

Standard library only, as the rest of the scenario package: a bad scenario fails fast,
naming the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, get_args

from pluginconf.fake.scenario.spec import HostAPIHook, HostAPIOpName, LogLevel

# Hooks during which the fake may call HostAPI, before it answers.
HOST_API_HOOKS: tuple[HostAPIHook, ...] = get_args(HostAPIHook)
OPS: tuple[HostAPIOpName, ...] = get_args(HostAPIOpName)
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
# An ExecuteCommand whose command starts with this runs the JSON list of ops that follows.
COMMAND_PREFIX = "hostapi "
MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_CONCURRENT = 64


class HostAPIScenarioError(Exception):
    """The host_api or broker section cannot be used; the message names the key."""


@dataclass(frozen=True)
class Op:
    op: str
    key: str = ""
    value: bytes | None = None  # kv_set's value
    old: bytes | None = None  # kv_cas: None means old_value not present
    new: bytes = b""
    concurrent: int = 1  # kv_cas: this many calls at once, new values suffixed "#i"
    level: str = "info"
    message: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostAPICalls:
    on: dict[str, tuple[Op, ...]] = field(default_factory=dict)
    commands: bool = False


@dataclass(frozen=True)
class ConnInfoSpec:
    service_id: int
    network: str
    address: str
    knock: bool = False


@dataclass(frozen=True)
class BrokerBehaviour:
    send: tuple[ConnInfoSpec, ...] = ()
    probe: bool = False


def _bad(key: str, expected: str, value: Any) -> HostAPIScenarioError:
    shown = json.dumps(value, ensure_ascii=False)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return HostAPIScenarioError(f"{key}: expected {expected}, got {shown}")


def _keys(value: Any, where: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, "a JSON object", value)
    for key in value:
        if key not in known:
            raise HostAPIScenarioError(
                f"{where}.{key}: unknown key (known keys of {where}: {', '.join(known)})"
            )
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _bad(key, "a string", value)
    return value


def _count(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(key, f"an integer from {low} to {high}", value)
    return value


def pattern_bytes(n: int) -> bytes:
    """``value_bytes: N``: N bytes of a fixed pattern covering every byte value."""
    return bytes(i % 256 for i in range(n))


def _value(obj: dict[str, Any], where: str, name: str) -> bytes | None:
    """A string (UTF-8) under ``name``, or N pattern bytes under ``name + '_bytes'``."""
    sized = name + "_bytes"
    if name in obj and sized in obj:
        raise HostAPIScenarioError(f"{where}: give {name} or {sized}, not both")
    if sized in obj:
        return pattern_bytes(_count(obj[sized], f"{where}.{sized}", 0, MAX_VALUE_BYTES))
    if name in obj and obj[name] is not None:
        return _text(obj[name], f"{where}.{name}").encode()
    return None


_OP_KEYS = {
    "kv_get": ("key",),
    "kv_set": ("key", "value", "value_bytes"),
    "kv_delete": ("key",),
    "kv_cas": ("key", "old", "old_bytes", "new", "new_bytes", "concurrent"),
    "log": ("level", "message", "fields"),
    "get_configuration": (),
}


def parse_op(value: Any, where: str) -> Op:
    if not isinstance(value, dict) or value.get("op") not in OPS:
        raise _bad(f"{where}.op", f"one of {', '.join(OPS)}", value)
    name = value["op"]
    obj = _keys(value, where, ("op", *_OP_KEYS[name]))
    key = _text(obj.get("key", ""), f"{where}.key")
    if name == "kv_set":
        data = _value(obj, where, "value")
        if data is None:
            raise HostAPIScenarioError(f"{where}: kv_set needs value or value_bytes")
        return Op(name, key, value=data)
    if name == "kv_cas":
        new = _value(obj, where, "new")
        return Op(
            name,
            key,
            old=_value(obj, where, "old"),
            new=b"" if new is None else new,
            concurrent=_count(obj.get("concurrent", 1), f"{where}.concurrent", 1, MAX_CONCURRENT),
        )
    if name == "log":
        level = obj.get("level", "info")
        if level not in LOG_LEVELS:
            raise _bad(f"{where}.level", f"one of {', '.join(LOG_LEVELS)}", level)
        fields = obj.get("fields", {})
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise _bad(f"{where}.fields", "an object of strings", fields)
        return Op(
            name,
            level=level,
            message=_text(obj.get("message", ""), f"{where}.message"),
            fields=dict(fields),
        )
    return Op(name, key)


def parse_ops(value: Any, where: str) -> tuple[Op, ...]:
    if not isinstance(value, list):
        raise _bad(where, "a list of HostAPI operations", value)
    return tuple(parse_op(v, f"{where}[{i}]") for i, v in enumerate(value))


def parse_host_api(value: Any) -> HostAPICalls:
    obj = _keys(value, "host_api", (*HOST_API_HOOKS, "commands"))
    on: dict[str, tuple[Op, ...]] = {
        hook: parse_ops(obj[hook], f"host_api.{hook}") for hook in HOST_API_HOOKS if hook in obj
    }
    commands = obj.get("commands", False)
    if not isinstance(commands, bool):
        raise _bad("host_api.commands", "true or false", commands)
    return HostAPICalls(on, commands)


def parse_broker(value: Any) -> BrokerBehaviour:
    obj = _keys(value, "broker", ("send", "probe"))
    probe = obj.get("probe", False)
    if not isinstance(probe, bool):
        raise _bad("broker.probe", "true or false", probe)
    sends = obj.get("send", [])
    if not isinstance(sends, list):
        raise _bad("broker.send", "a list of ConnInfo objects", sends)
    infos = []
    for i, item in enumerate(sends):
        where = f"broker.send[{i}]"
        info = _keys(item, where, ("service_id", "network", "address", "knock"))
        knock = info.get("knock", False)
        if not isinstance(knock, bool):
            raise _bad(f"{where}.knock", "true or false", knock)
        infos.append(
            ConnInfoSpec(
                _count(info.get("service_id"), f"{where}.service_id", 0, 2**32 - 1),
                _text(info.get("network", "unix"), f"{where}.network"),
                _text(info.get("address", ""), f"{where}.address"),
                knock,
            )
        )
    return BrokerBehaviour(tuple(infos), probe)


def parse_command(command: str) -> tuple[Op, ...] | None:
    """The ops of a ``hostapi [...]`` command; None for any other command. Raises
    HostAPIScenarioError for a command that starts so but does not parse."""
    if not command.startswith(COMMAND_PREFIX):
        return None
    try:
        data = json.loads(command[len(COMMAND_PREFIX) :])
    except ValueError as exc:
        raise HostAPIScenarioError(f"command: not JSON after {COMMAND_PREFIX!r}: {exc}") from None
    return parse_ops(data, "command")
