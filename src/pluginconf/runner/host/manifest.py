"""What loading a fake plugin sends the host: its HostPolicy, and its manifest as plugin.toml."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypedDict, Unpack

from pluginconf.control import control_pb2

# Policy fields in milliseconds, as cases give them in seconds.
_POLICY_SECONDS = {
    "start_timeout_s": "start_timeout_ms",
    "hook_timeout_s": "hook_timeout_ms",
    "health_interval_s": "health_interval_ms",
    "health_timeout_s": "health_timeout_ms",
    "backoff_base_s": "backoff_base_ms",
    "backoff_max_s": "backoff_max_ms",
    "restart_window_s": "restart_window_ms",
    "breaker_cooldown_s": "breaker_cooldown_ms",
    "stop_grace_s": "stop_grace_ms",
}
_POLICY_PLAIN = ("restart_limit", "breaker_threshold", "auto_mtls", "max_request_body_bytes")


class PolicyFields(TypedDict, total=False):
    """The HostPolicy a case may ask for when it loads a fake: times in seconds, and counts.
    Fields left out are the host's defaults."""

    start_timeout_s: float
    hook_timeout_s: float
    health_interval_s: float
    health_timeout_s: float
    backoff_base_s: float
    backoff_max_s: float
    restart_window_s: float
    breaker_cooldown_s: float
    stop_grace_s: float
    restart_limit: int
    breaker_threshold: int
    auto_mtls: bool
    max_request_body_bytes: int


def host_policy(**policy: Unpack[PolicyFields]) -> control_pb2.HostPolicy:
    """A HostPolicy from seconds and counts: ``host_policy(start_timeout_s=2, restart_limit=1)``.
    Checked as it is made (cases are not type-checked): an unknown field or a value of the
    wrong kind is a TypeError that names it."""
    message = control_pb2.HostPolicy()
    for key, value in policy.items():
        if key in _POLICY_SECONDS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise TypeError(f"host policy field {key!r} is {value!r}; expected seconds >= 0")
            setattr(message, _POLICY_SECONDS[key], max(1, round(value * 1000)))
        elif key in _POLICY_PLAIN:
            expected = bool if key == "auto_mtls" else int
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise TypeError(
                    f"host policy field {key!r} is {value!r}; expected {expected.__name__}"
                )
            setattr(message, key, value)
        else:
            known = ", ".join(sorted(PolicyFields.__optional_keys__))
            raise TypeError(f"unknown host policy field {key!r}; the fields are {known}")
    return message


def manifest_toml(
    plugin_id: str,
    command: Sequence[str],
    env: Mapping[str, str] | None,
    configuration: Mapping[str, str] | None,
) -> str:
    """The same manifest as plugin.toml (src/pluginconf/host/manifest.py's format)."""

    def table(values: Mapping[str, str] | None) -> str:
        pairs = (f"{_string(k)} = {_string(v)}" for k, v in (values or {}).items())
        return "{ " + ", ".join(pairs) + " }"

    lines = [
        f"id = {_string(plugin_id)}",
        f"executable = {_string(command[0])}",
        f"args = [{', '.join(_string(a) for a in command[1:])}]",
        f"env = {table(env)}",
        f"configuration = {table(configuration)}",
    ]
    return "\n".join(lines) + "\n"


def _string(text: str) -> str:
    # A JSON string without \u escapes of surrogates is a TOML basic string.
    return json.dumps(text, ensure_ascii=False)
