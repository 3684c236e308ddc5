"""Loading a scenario: the file's JSON, every key read and the keys checked together.

A scenario that does not validate never reaches the plugin machinery: ``load`` raises
``ScenarioError`` naming the key and what was expected, and the command line exits 2 with
that message on stderr and nothing on stdout. fake_interpreters/README.md documents every key.
Importing this module must stay cheap (no gRPC, no protobuf): a bad scenario fails fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

from pluginconf.fake.scenario.hostapi import (
    HostAPIScenarioError,
    parse_broker,
    parse_host_api,
)
from pluginconf.fake.scenario.model import (
    EXIT_SCENARIO_ERROR,
    NETWORKS,
    STDIO_MODES,
    USAGE,
    AppErrorSpec,
    Scenario,
    ScenarioError,
)
from pluginconf.fake.scenario.sections import (
    MAX_MESSAGE,
    read_app_error,
    read_command_response,
    read_cookie,
    read_crash,
    read_filter,
    read_flood,
    read_flood_stdout,
    read_grandchild,
    read_handshake,
    read_hang,
    read_health,
    read_hook_errors,
    read_hook_status,
    read_hooks,
    read_implemented_extra,
    read_noise,
    read_odd_answers,
    read_record,
    read_tls,
    read_versions,
)
from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.fake.scenario.values import (
    JSONObject,
    as_bool,
    as_int,
    as_number,
    as_str,
    bad_value,
)
from pluginconf.protocol.hooks import IMPLEMENTED

# Keys that only mean something for a plugin that serves gRPC after a real handshake.
_SERVING_KEYS = (
    "crash",
    "hang",
    "health",
    "activation_error",
    "hook_errors",
    "filter",
    "command_response",
    "hooks",
    "hook_delay_ms",
    "network",
    "protocol_versions",
    "flood_stdout",
    "host_api",
    "broker",
    "filter_raw",
    "configuration_error_from_call",
    "tls",
    "implemented_extra",
    "hook_status",
    "stdio",
    "configuration_error_after_activation",
    "max_receive_bytes",
)
# The keys a scenario file may have: those of its type, in their order.
TOP_KEYS = tuple(ScenarioSpec.__annotations__)


def _all_hook_errors(top: JSONObject) -> dict[str, AppErrorSpec]:
    """hook_errors, with activation_error as hook_errors.OnActivate."""
    errors = read_hook_errors(top.get("hook_errors")) if "hook_errors" in top else {}
    if "activation_error" in top:
        if "OnActivate" in errors:
            raise ScenarioError(
                "activation_error: OnActivate also has hook_errors; give one of the two"
            )
        errors["OnActivate"] = read_app_error(top.get("activation_error"), "activation_error")
    return errors


def parse(data: Any, path: str) -> Scenario:
    """Build a Scenario from decoded JSON; raise ScenarioError on any unusable value."""
    top = JSONObject(data, "", TOP_KEYS)
    values: dict[str, Any] = {}
    if "comment" in top:
        values["comment"] = as_str(top.get("comment"), "comment")
    if "never_handshake" in top:
        values["never_handshake"] = as_bool(top.get("never_handshake"), "never_handshake")
    if "handshake" in top:
        values["handshake"] = read_handshake(top.get("handshake"))
    if "noise_before_handshake" in top:
        values["noise_before_handshake"] = read_noise(top.get("noise_before_handshake"))
    if "slow_start" in top:
        values["slow_start_s"] = as_number(top.get("slow_start"), "slow_start", "seconds")
    if "crash" in top:
        values["crash"] = read_crash(top.get("crash"))
    if "hang" in top:
        values["hang"] = read_hang(top.get("hang"))
    if "health" in top:
        values["health"] = read_health(top.get("health"))
    values["hook_errors"] = _all_hook_errors(top)
    if "filter" in top:
        values["filter"] = read_filter(top.get("filter"))
    if "command_response" in top:
        values["command_response"] = read_command_response(top.get("command_response"))
    if "hooks" in top:
        values["hooks"] = read_hooks(top.get("hooks"))
    if "ignore_shutdown" in top:
        values["ignore_shutdown"] = as_bool(top.get("ignore_shutdown"), "ignore_shutdown")
    if "spawn_grandchild" in top:
        values["spawn_grandchild"] = read_grandchild(top.get("spawn_grandchild"))
    if "flood_stderr" in top:
        values["flood_stderr"] = read_flood(top.get("flood_stderr"))
    if "flood_stdout" in top:
        values["flood_stdout"] = read_flood_stdout(top.get("flood_stdout"))
    if "record" in top:
        values["record"] = read_record(top.get("record"), os.path.dirname(os.path.abspath(path)))
    if "hook_delay_ms" in top:
        values["hook_delay_ms"] = as_number(top.get("hook_delay_ms"), "hook_delay_ms", "ms")
    if "network" in top:
        network = top.get("network")
        if network not in NETWORKS:
            raise bad_value("network", '"unix" or "tcp"', network)
        values["network"] = network
    if "protocol_versions" in top:
        values["protocol_versions"] = read_versions(top.get("protocol_versions"))
    if "magic_cookie" in top:
        values["magic_cookie"] = read_cookie(top.get("magic_cookie"))
    try:
        if "host_api" in top:
            values["host_api"] = parse_host_api(top.get("host_api"))
        if "broker" in top:
            values["broker"] = parse_broker(top.get("broker"))
    except HostAPIScenarioError as exc:
        raise ScenarioError(str(exc)) from None
    values.update(read_odd_answers(top))
    values.update(_real_plugin_keys(top))
    scenario = Scenario(path=path, **values)
    _check_combinations(scenario, top)
    _check_odd_answers(scenario, top)
    return scenario


def _real_plugin_keys(top: JSONObject) -> dict[str, Any]:
    """tls, implemented_extra, hook_status, stdio, configuration_error_after_activation,
    max_receive_bytes."""
    values: dict[str, Any] = {}
    if "tls" in top:
        values["tls"] = read_tls(top.get("tls"))
    if "implemented_extra" in top:
        values["implemented_extra"] = read_implemented_extra(top.get("implemented_extra"))
    if "hook_status" in top:
        values["hook_status"] = read_hook_status(top.get("hook_status"))
    if "stdio" in top:
        stdio = top.get("stdio")
        if stdio not in STDIO_MODES:
            raise bad_value("stdio", '"served", "absent" or "ends"', stdio)
        values["stdio"] = stdio
    key = "configuration_error_after_activation"
    if key in top:
        values[key] = read_app_error(top.get(key), key)
    if "max_receive_bytes" in top:
        values["max_receive_bytes"] = as_int(
            top.get("max_receive_bytes"), "max_receive_bytes", 4 * 1024 * 1024, MAX_MESSAGE
        )
    return values


def _check_real_plugin_keys(scenario: Scenario) -> None:
    for hook in scenario.hook_status:
        if hook != IMPLEMENTED and not scenario.implements(hook):
            raise ScenarioError(f"hook_status.{hook}: needs {hook} in hooks")
        if hook in scenario.hook_errors:
            raise ScenarioError(
                f"hook_status.{hook}: hook_errors.{hook} makes it answer an AppError; give one"
            )
    if scenario.configuration_error_after_activation is not None:
        key = "configuration_error_after_activation"
        for hook in ("OnConfigurationChange", "OnActivate"):
            if not scenario.implements(hook):
                raise ScenarioError(f"{key}: needs {hook} in hooks")
        if "OnConfigurationChange" in scenario.hook_errors:
            raise ScenarioError(f"{key}: hook_errors.OnConfigurationChange already fails it")


def _check_combinations(scenario: Scenario, top: JSONObject) -> None:
    _check_real_plugin_keys(scenario)
    if scenario.never_handshake and scenario.handshake is not None:
        raise ScenarioError("never_handshake and handshake: choose one")
    if not scenario.serves:
        why = "never_handshake" if scenario.never_handshake else "handshake"
        for key in _SERVING_KEYS:
            if key in top:
                raise ScenarioError(
                    f"{key}: applies only to a plugin that serves, but {why} means the real "
                    "handshake never happens"
                )
        if scenario.flood_stderr is not None and scenario.flood_stderr.when == "after":
            raise ScenarioError(
                f'flood_stderr.when: "after" (the default) needs a handshake, but {why} '
                'means there is none; use {"bytes": N, "when": "before"}'
            )
    for hook in scenario.hook_errors:
        if not scenario.implements(hook):
            from_alias = hook == "OnActivate" and "activation_error" in top
            key = "activation_error" if from_alias else f"hook_errors.{hook}"
            raise ScenarioError(f"{key}: needs {hook} in hooks")
    _check_answers(scenario, top)
    if scenario.host_api is not None:
        needed = list(scenario.host_api.on)
        if scenario.host_api.commands:
            needed.append("ExecuteCommand")
        for hook in needed:
            if not scenario.implements(hook):
                raise ScenarioError(f"host_api.{hook}: needs {hook} in hooks")
        if not scenario.implements("OnActivate"):
            raise ScenarioError("host_api: needs OnActivate in hooks (it brings the broker id)")
    crash = scenario.crash
    if (
        crash is not None
        and crash.during_http_after_bytes is not None
        and not scenario.implements("ServeHTTP")
    ):
        raise ScenarioError("crash.during_http_after_bytes: needs ServeHTTP in hooks")


def _check_answers(scenario: Scenario, top: JSONObject) -> None:
    """filter and command_response shape answers that must be given."""
    for key, hook in (("filter", "MessageWillBePosted"), ("command_response", "ExecuteCommand")):
        if key not in top:
            continue
        if not scenario.implements(hook):
            raise ScenarioError(f"{key}: needs {hook} in hooks")
        if hook in scenario.hook_errors:
            raise ScenarioError(
                f"{key}: hook_errors.{hook} makes {hook} answer an error instead; "
                "give one of the two"
            )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ScenarioError(f"{key}: appears twice in the same object")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ScenarioError(f"{name} is not a JSON number; use a finite number")


def load(path: str) -> Scenario:
    """Read and validate the scenario file at ``path``."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ScenarioError(f"cannot read the scenario file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return parse(data, path)


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"fakeplugin: {message}\n")
    sys.stderr.flush()
    sys.exit(EXIT_SCENARIO_ERROR)


def load_from_argv(argv: list[str]) -> Scenario:
    """The scenario named on the command line; exit 2 with a message when there is none."""
    if argv in (["-h"], ["--help"]):
        sys.stdout.write(USAGE + "\n")
        sys.exit(0)
    check_only = len(argv) == 2 and argv[0] == "--check"
    if check_only:
        argv = argv[1:]
    if len(argv) != 1:
        fail(f"expected exactly one argument, the scenario file, got {len(argv)}\n{USAGE}")
    try:
        scenario = load(argv[0])
    except ScenarioError as exc:
        fail(f"scenario {argv[0]}: {exc}")
    if check_only:
        sys.stdout.write(f"fakeplugin: scenario {argv[0]} is valid\n")
        sys.exit(0)
    return scenario


def _check_odd_answers(scenario: Scenario, top: JSONObject) -> None:
    if scenario.filter_raw is not None:
        if "filter" in top:
            raise ScenarioError("filter_raw and filter: choose one")
        if not scenario.implements("MessageWillBePosted"):
            raise ScenarioError("filter_raw: needs MessageWillBePosted in hooks")
        if "MessageWillBePosted" in scenario.hook_errors:
            raise ScenarioError(
                "filter_raw: hook_errors.MessageWillBePosted makes it answer an error instead; "
                "give one of the two"
            )
    if scenario.configuration_error_from_call is not None:
        if not scenario.implements("OnConfigurationChange"):
            raise ScenarioError(
                "configuration_error_from_call: needs OnConfigurationChange in hooks"
            )
        if "OnConfigurationChange" in scenario.hook_errors:
            raise ScenarioError(
                "configuration_error_from_call: hook_errors.OnConfigurationChange fails every "
                "call already; give one of the two"
            )
