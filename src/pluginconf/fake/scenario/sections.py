"""The scenario's sections, each read from its JSON value and validated."""

from __future__ import annotations

import json
import os
from typing import Any

from pluginconf.fake.scenario.model import (
    DEFAULT_CRASH_EXIT_CODE,
    DEFAULT_REJECTION_REASON,
    FILTER_ACTIONS,
    FLOOD_WHEN,
    HEALTH_STATUSES,
    MAX_NOISE_LINES,
    RESPONSE_TYPES,
    SIXTH_FIELDS,
    STATUS_NAMES,
    TLS_SERVE,
    AppErrorSpec,
    CommandResponse,
    ConfigurationErrorFrom,
    Crash,
    Filter,
    FilterRaw,
    Flood,
    Grandchild,
    HandshakeFault,
    Hang,
    Health,
    Record,
    ScenarioError,
    TLSSpec,
)
from pluginconf.fake.scenario.values import (
    JSONObject,
    as_bool,
    as_hook,
    as_hook_set,
    as_int,
    as_number,
    as_str,
    bad_value,
)
from pluginconf.protocol.hooks import HOOKS, HOOKS_WITH_APP_ERROR, IMPLEMENTED

# -- sections -----------------------------------------------------------------------------


def read_handshake(value: Any) -> HandshakeFault:
    obj = JSONObject(
        value, "handshake", ("line", "with_certificate", "exit_before", "stderr", "close_stdout")
    )
    modes = [k for k in ("line", "exit_before", "close_stdout") if k in obj]
    if len(modes) != 1:
        raise ScenarioError(
            "handshake: expected exactly one of line, exit_before, close_stdout, got "
            f"{', '.join(modes) or 'none'}"
        )
    if "stderr" in obj and modes != ["exit_before"]:
        raise ScenarioError("handshake.stderr: only goes with handshake.exit_before")
    if "with_certificate" in obj and modes != ["line"]:
        raise ScenarioError("handshake.with_certificate: only goes with handshake.line")
    if "line" in obj:
        return HandshakeFault(
            line=as_str(obj.get("line"), "handshake.line", single_line=True),
            with_certificate="with_certificate" in obj
            and as_bool(obj.get("with_certificate"), "handshake.with_certificate"),
        )
    if "exit_before" in obj:
        stderr = None
        if "stderr" in obj:
            stderr = as_str(obj.get("stderr"), "handshake.stderr")
        code = as_int(obj.get("exit_before"), "handshake.exit_before", 0, 255)
        return HandshakeFault(exit_before=code, stderr=stderr)
    if not as_bool(obj.get("close_stdout"), "handshake.close_stdout"):
        raise bad_value("handshake.close_stdout", "true (leave the key out otherwise)", False)
    return HandshakeFault(close_stdout=True)


def read_noise(value: Any) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        count = as_int(value, "noise_before_handshake", 0, MAX_NOISE_LINES)
        return tuple(f"fakeplugin noise line {i} of {count}" for i in range(1, count + 1))
    if not isinstance(value, list):
        raise bad_value("noise_before_handshake", "a number of lines or a list of strings", value)
    return tuple(
        as_str(v, f"noise_before_handshake[{i}]", single_line=True) for i, v in enumerate(value)
    )


def read_crash(value: Any) -> Crash:
    triggers = ("on", "after_hook_calls", "during_http_after_bytes")
    obj = JSONObject(value, "crash", (*triggers, "exit_code"))
    if not any(k in obj for k in triggers):
        raise ScenarioError(f"crash: expected at least one of {', '.join(triggers)}")
    return Crash(
        on=as_hook_set(obj.get("on"), "crash.on", True) if "on" in obj else frozenset(),
        after_hook_calls=(
            as_int(obj.get("after_hook_calls"), "crash.after_hook_calls", 1)
            if "after_hook_calls" in obj
            else None
        ),
        during_http_after_bytes=(
            as_int(obj.get("during_http_after_bytes"), "crash.during_http_after_bytes", 0)
            if "during_http_after_bytes" in obj
            else None
        ),
        exit_code=(
            as_int(obj.get("exit_code"), "crash.exit_code", 0, 255)
            if "exit_code" in obj
            else DEFAULT_CRASH_EXIT_CODE
        ),
    )


def read_hang(value: Any) -> Hang:
    obj = JSONObject(value, "hang", ("hook", "health"))
    if "hook" not in obj and "health" not in obj:
        raise ScenarioError("hang: expected at least one of hook, health")
    hooks = as_hook_set(obj.get("hook"), "hang.hook", True) if "hook" in obj else frozenset()
    if "health" not in obj:
        return Hang(hooks=hooks)
    health = obj.get("health")
    if isinstance(health, bool):
        return Hang(hooks=hooks, health=health)
    expected = "true, false, {after_checks: N} or {after_s: S}"
    when = JSONObject(health, "hang.health", ("after_checks", "after_s"), expected)
    if len(when.data) != 1:
        raise bad_value("hang.health", expected, health)
    if "after_checks" in when:
        checks = as_int(when.get("after_checks"), "hang.health.after_checks", 0)
        return Hang(hooks=hooks, health=True, health_after_checks=checks)
    seconds = as_number(when.get("after_s"), "hang.health.after_s", "seconds")
    return Hang(hooks=hooks, health=True, health_after_s=seconds)


def read_health(value: Any) -> Health:
    expected = '"SERVING", "NOT_SERVING", {flap_every_s: S} or {serving_after_s: S}'
    if isinstance(value, str):
        if value not in HEALTH_STATUSES:
            raise bad_value("health", expected, value)
        return Health(status=value)
    obj = JSONObject(value, "health", ("flap_every_s", "serving_after_s"), expected)
    if len(obj.data) != 1:
        raise ScenarioError(
            "health: expected exactly one of flap_every_s, serving_after_s, got "
            f"{', '.join(obj.data) or 'none'}"
        )
    if "serving_after_s" in obj:
        after = as_number(obj.get("serving_after_s"), "health.serving_after_s", "seconds")
        return Health(serving_after_s=after)
    return Health(
        flap_every_s=as_number(obj.get("flap_every_s"), "health.flap_every_s", "seconds", True)
    )


def read_app_error(value: Any, key: str) -> AppErrorSpec:
    obj = JSONObject(value, key, ("code", "message"))
    if "code" not in obj:
        raise ScenarioError(f"{key}: expected the key code (and optionally message)")
    code = as_str(obj.get("code"), f"{key}.code", non_empty=True)
    message = as_str(obj.get("message"), f"{key}.message") if "message" in obj else ""
    return AppErrorSpec(code, message)


def read_hook_errors(value: Any) -> dict[str, AppErrorSpec]:
    if not isinstance(value, dict):
        raise bad_value("hook_errors", "an object {HOOK: {code: C, message: M}, ...}", value)
    errors: dict[str, AppErrorSpec] = {}
    for name, spec in value.items():
        key = f"hook_errors.{name}"
        hook = as_hook(name, key, False)
        if hook not in HOOKS_WITH_APP_ERROR:
            raise ScenarioError(
                f"{key}: {hook} has no error in its response; expected one of "
                f"{', '.join(HOOKS_WITH_APP_ERROR)}"
            )
        if hook in errors:
            raise ScenarioError(f"{key}: {hook} is given more than once")
        errors[hook] = read_app_error(spec, key)
    return errors


def read_filter(value: Any) -> Filter:
    obj = JSONObject(value, "filter", ("action", "append", "reason", "drop_props"))
    action = "keep"
    if "action" in obj:
        action = obj.get("action")
        if action not in FILTER_ACTIONS:
            raise bad_value("filter.action", '"keep", "modify" or "reject"', action)
    if "append" in obj and action != "modify":
        raise ScenarioError('filter.append: only goes with filter.action "modify"')
    if "reason" in obj and action != "reject":
        raise ScenarioError('filter.reason: only goes with filter.action "reject"')
    append = as_str(obj.get("append"), "filter.append") if "append" in obj else ""
    reason = (
        as_str(obj.get("reason"), "filter.reason") if "reason" in obj else DEFAULT_REJECTION_REASON
    )
    if "drop_props" in obj and action != "modify":
        raise ScenarioError('filter.drop_props: only goes with filter.action "modify"')
    dropped = obj.get("drop_props") if "drop_props" in obj else []
    if not isinstance(dropped, list) or not all(isinstance(k, str) for k in dropped):
        raise bad_value("filter.drop_props", "a list of strings", dropped)
    return Filter(action, append, reason, tuple(dropped))


def read_command_response(value: Any) -> CommandResponse:
    obj = JSONObject(value, "command_response", ("text", "response_type", "message_bytes"))
    text = as_str(obj.get("text"), "command_response.text") if "text" in obj else None
    size = None
    if "message_bytes" in obj:
        if text is not None:
            raise ScenarioError("command_response.message_bytes: give text or message_bytes")
        size = as_int(obj.get("message_bytes"), "command_response.message_bytes", 64, MAX_MESSAGE)
    response_type = "ephemeral"
    if "response_type" in obj:
        response_type = obj.get("response_type")
        if response_type not in RESPONSE_TYPES:
            raise bad_value(
                "command_response.response_type", '"ephemeral" or "in_channel"', response_type
            )
    return CommandResponse(text, response_type, size)


def read_hooks(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise bad_value("hooks", "a list of hook names (may be empty)", value)
    names = [as_hook(v, f"hooks[{i}]", False) for i, v in enumerate(value)]
    for name in names:
        if names.count(name) > 1:
            raise ScenarioError(f"hooks: {name} is listed more than once")
    return frozenset(names)


def read_grandchild(value: Any) -> Grandchild | None:
    if isinstance(value, bool):
        return Grandchild() if value else None
    obj = JSONObject(value, "spawn_grandchild", ("seconds",), "true, false or {seconds: S}")
    if "seconds" not in obj:
        return Grandchild()
    return Grandchild(as_number(obj.get("seconds"), "spawn_grandchild.seconds", "seconds", True))


def read_flood(value: Any) -> Flood:
    if isinstance(value, int) and not isinstance(value, bool):
        return Flood(as_int(value, "flood_stderr", 0))
    obj = JSONObject(value, "flood_stderr", ("bytes", "when"), "a number of bytes or an object")
    if "bytes" not in obj:
        raise ScenarioError("flood_stderr: expected the key bytes")
    when = "after"
    if "when" in obj:
        when = obj.get("when")
        if when not in FLOOD_WHEN:
            raise bad_value("flood_stderr.when", '"after" or "before" (the handshake)', when)
    return Flood(as_int(obj.get("bytes"), "flood_stderr.bytes", 0), when)


MAX_FLOOD_LINE = 64 * 1024 * 1024


def read_flood_stdout(value: Any) -> Flood:
    obj = JSONObject(value, "flood_stdout", ("bytes", "line_bytes"), "an object")
    if "bytes" not in obj:
        raise ScenarioError("flood_stdout: expected the key bytes")
    line = 1024
    if "line_bytes" in obj:
        line = as_int(obj.get("line_bytes"), "flood_stdout.line_bytes", 1, MAX_FLOOD_LINE)
    return Flood(as_int(obj.get("bytes"), "flood_stdout.bytes", 0), "after", line)


def read_record(value: Any, scenario_dir: str) -> Record:
    obj = JSONObject(value, "record", ("file", "observer", "label"))
    if "file" not in obj and "observer" not in obj:
        raise ScenarioError(
            "record: expected the key file (a path, relative to the scenario), the key "
            'observer (a gRPC target such as "unix:/tmp/x/observer.sock"), or both'
        )
    if "label" in obj and "observer" not in obj:
        raise ScenarioError("record.label: only goes with record.observer")
    path = None
    if "file" in obj:
        path = os.path.join(scenario_dir, as_str(obj.get("file"), "record.file", non_empty=True))
    observer = None
    if "observer" in obj:
        observer = as_str(obj.get("observer"), "record.observer", single_line=True, non_empty=True)
    label = as_str(obj.get("label"), "record.label") if "label" in obj else ""
    return Record(path, observer, label)


def read_versions(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise bad_value("protocol_versions", "a non-empty list of integers >= 1", value)
    return tuple(as_int(v, f"protocol_versions[{i}]", 1) for i, v in enumerate(value))


def read_cookie(value: Any) -> tuple[str, str]:
    text = as_str(value, "magic_cookie")
    key, sep, cookie = text.partition("=")
    if not sep or not key or not cookie:
        raise bad_value("magic_cookie", "KEY=VALUE with both parts non-empty", value)
    return key, cookie


MAX_MESSAGE = 1 << 30


def _choice(obj: JSONObject, name: str, choices: tuple[str, ...], default: str) -> str:
    if name not in obj:
        return default
    value = obj.get(name)
    if value not in choices:
        raise bad_value(obj.key(name), " or ".join(json.dumps(c) for c in choices), value)
    return str(value)


def read_tls(value: Any) -> TLSSpec:
    obj = JSONObject(value, "tls", ("serve", "sixth_field", "certificate_padding"))
    padding = None
    if "certificate_padding" in obj:
        padding = as_int(obj.get("certificate_padding"), "tls.certificate_padding", 0, 2)
    return TLSSpec(
        serve=_choice(obj, "serve", TLS_SERVE, "auto"),
        sixth_field=_choice(obj, "sixth_field", SIXTH_FIELDS, "auto"),
        certificate_padding=padding,
    )


def read_implemented_extra(value: Any) -> tuple[str, ...]:
    key = "implemented_extra"
    if not isinstance(value, list) or not value:
        raise bad_value(key, "a non-empty list of names that are not Hooks methods", value)
    names = []
    for i, v in enumerate(value):
        name = as_str(v, f"{key}[{i}]", single_line=True, non_empty=True)
        if name in HOOKS or name == IMPLEMENTED:
            raise ScenarioError(f"{key}[{i}]: {name} is a Hooks method; use hooks for those")
        names.append(name)
    return tuple(names)


def read_hook_status(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        raise bad_value("hook_status", 'an object {HOOK: "STATUS", ...}', value)
    statuses: dict[str, str] = {}
    for name, status in value.items():
        key = f"hook_status.{name}"
        hook = as_hook(name, key, True)
        if hook in statuses:
            raise ScenarioError(f"{key}: {hook} is given more than once")
        if hook == "ServeHTTP":
            raise ScenarioError(f"{key}: only unary calls (Implemented and the unary hooks)")
        if status not in STATUS_NAMES:
            raise bad_value(
                key, 'a gRPC status code name other than OK, e.g. "UNIMPLEMENTED"', status
            )
        statuses[hook] = str(status)
    return statuses


# -- answers no correct plugin gives ---------------------------------------------------------


def _filter_raw(value: Any) -> FilterRaw:
    obj = JSONObject(value, "filter_raw", ("action", "post"))
    if "action" not in obj:
        raise ScenarioError("filter_raw.action: missing; give the FilterAction number to answer")
    action = as_int(obj.get("action"), "filter_raw.action", 0, 2**31 - 1)
    post = as_bool(obj.get("post"), "filter_raw.post") if "post" in obj else False
    return FilterRaw(action, post)


def _configuration_error_from(value: Any) -> ConfigurationErrorFrom:
    key = "configuration_error_from_call"
    obj = JSONObject(value, key, ("call", "code", "message"))
    if "call" not in obj:
        raise ScenarioError(f"{key}.call: missing; give the first call (from 1) that fails")
    call = as_int(obj.get("call"), f"{key}.call", 1)
    error = read_app_error({k: obj.get(k) for k in ("code", "message") if k in obj}, key)
    return ConfigurationErrorFrom(call, error)


def read_odd_answers(top: JSONObject) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "filter_raw" in top:
        values["filter_raw"] = _filter_raw(top.get("filter_raw"))
    if "configuration_error_from_call" in top:
        values["configuration_error_from_call"] = _configuration_error_from(
            top.get("configuration_error_from_call")
        )
    return values
