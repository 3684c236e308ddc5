"""The fakeplugin scenario file: JSON, read and validated with the standard library only.

A scenario that does not validate never reaches the plugin machinery: ``load`` raises
``ScenarioError`` naming the key and what was expected, and the command line exits 2 with
that message on stderr and nothing on stdout. fake_interpreters/README.md documents every key.
Importing this module must stay cheap (no gRPC, no protobuf): a bad scenario fails fast.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

EXIT_SCENARIO_ERROR = 2
USAGE = (
    "usage: fakeplugin SCENARIO.json          run as the plugin the scenario describes\n"
    "       fakeplugin --check SCENARIO.json  only validate the scenario\n"
    "(fakeplugin is fake_interpreters/fakeplugin or python -m pluginconf.fake)\n"
    "The scenario format: fake_interpreters/README.md"
)

# pluginconf.v1.Hooks methods a plugin may implement, in the order Implemented lists them
# (the SDK's Plugin.HOOK_METHODS; the runner checks that the two agree).
HOOKS = (
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageHasBeenPosted",
    "MessageWillBePosted",
    "ExecuteCommand",
    "ServeHTTP",
)
IMPLEMENTED = "Implemented"
# The hooks whose response has an AppError field (hook_errors).
HOOKS_WITH_ERROR = (
    "OnConfigurationChange",
    "OnActivate",
    "OnDeactivate",
    "MessageWillBePosted",
    "ExecuteCommand",
)
FILTER_ACTIONS = ("keep", "modify", "reject")
RESPONSE_TYPES = ("ephemeral", "in_channel")
DEFAULT_REJECTION_REASON = "rejected by fakeplugin"

DEFAULT_COOKIE = ("PLUGINCONF_MAGIC_COOKIE", "pluginconf")
DEFAULT_CRASH_EXIT_CODE = 3
DEFAULT_GRANDCHILD_SECONDS = 300.0
MAX_NOISE_LINES = 100_000


class ScenarioError(Exception):
    """The scenario cannot be used; the message names the key and what was expected."""


@dataclass(frozen=True)
class HandshakeFault:
    """Instead of the real handshake: print ``line``, exit, or close stdout."""

    line: str | None = None
    exit_before: int | None = None
    stderr: str | None = None
    close_stdout: bool = False
    # With a five-field ``line``: when the host sets PLUGIN_CLIENT_CERT, append the fake's own
    # certificate as field 6, as a plugin under AutoMTLS would.
    with_certificate: bool = False


@dataclass(frozen=True)
class Crash:
    on: frozenset[str] = frozenset()
    after_hook_calls: int | None = None
    during_http_after_bytes: int | None = None
    exit_code: int = DEFAULT_CRASH_EXIT_CODE


@dataclass(frozen=True)
class Hang:
    hooks: frozenset[str] = frozenset()
    health: bool = False
    # With health: answer this many Check calls first, or answer for this long after the
    # handshake, then stop answering. Neither: never answer.
    health_after_checks: int | None = None
    health_after_s: float | None = None


@dataclass(frozen=True)
class Health:
    status: str = "SERVING"  # or "NOT_SERVING"
    flap_every_s: float | None = None
    # NOT_SERVING for this long after the handshake, then SERVING.
    serving_after_s: float | None = None


@dataclass(frozen=True)
class AppErrorSpec:
    code: str
    message: str


@dataclass(frozen=True)
class Filter:
    """What MessageWillBePosted answers."""

    action: str = "keep"  # FILTER_ACTIONS
    append: str = ""  # modify: appended to post.message
    reason: str = DEFAULT_REJECTION_REASON  # reject: rejection_reason


@dataclass(frozen=True)
class CommandResponse:
    """What ExecuteCommand answers; text None: the command received."""

    text: str | None = None
    response_type: str = "ephemeral"


@dataclass(frozen=True)
class Flood:
    bytes: int
    when: str = "after"  # or "before" (the handshake)
    line_bytes: int = 1024  # each line, its newline included


@dataclass(frozen=True)
class Grandchild:
    seconds: float = DEFAULT_GRANDCHILD_SECONDS


@dataclass(frozen=True)
class Record:
    file: str | None = None  # absolute
    observer: str | None = None  # a gRPC target serving pluginconf.conformance.v1.Observer
    label: str = ""


@dataclass(frozen=True)
class Scenario:
    path: str
    comment: str = ""
    never_handshake: bool = False
    handshake: HandshakeFault | None = None
    noise_before_handshake: tuple[str, ...] = ()
    slow_start_s: float = 0.0
    crash: Crash | None = None
    hang: Hang = field(default_factory=Hang)
    health: Health = field(default_factory=Health)
    # Hook name -> the AppError it answers (activation_error is hook_errors["OnActivate"]).
    hook_errors: Mapping[str, AppErrorSpec] = field(default_factory=dict)
    filter: Filter = field(default_factory=Filter)
    command_response: CommandResponse = field(default_factory=CommandResponse)
    hooks: frozenset[str] | None = None  # None: every hook
    ignore_shutdown: bool = False
    spawn_grandchild: Grandchild | None = None
    flood_stderr: Flood | None = None
    flood_stdout: Flood | None = None  # after the handshake, to the stdout pipe the host reads
    record: Record | None = None
    hook_delay_ms: float = 0.0
    network: str = "unix"
    protocol_versions: tuple[int, ...] = (1,)
    magic_cookie: tuple[str, str] = DEFAULT_COOKIE

    @property
    def serves(self) -> bool:
        """Whether the plugin gets as far as a real handshake and a gRPC server."""
        return not self.never_handshake and self.handshake is None

    def implements(self, hook: str) -> bool:
        return self.hooks is None or hook in self.hooks

    @property
    def activation_error(self) -> AppErrorSpec | None:
        return self.hook_errors.get("OnActivate")


# -- reading JSON values ------------------------------------------------------------------


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _bad(key: str, expected: str, value: Any) -> ScenarioError:
    return ScenarioError(f"{key}: expected {expected}, got {_show(value)} ({_type_name(value)})")


class _Object:
    """A JSON object being read: every key must be one of ``known``."""

    def __init__(self, value: Any, where: str, known: Iterable[str], expected: str = "") -> None:
        if not isinstance(value, dict):
            raise _bad(where or "the scenario", expected or "a JSON object", value)
        self.where = where
        self.data: dict[str, Any] = value
        known = tuple(known)
        for key in value:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ScenarioError(
                    f"{self.key(key)}: unknown key{suggestion} "
                    f"(known keys{' of ' + where if where else ''}: {', '.join(known)})"
                )

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str) -> Any:
        return self.data[name]


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, "true or false", value)
    return value


def _int(value: Any, key: str, low: int, high: int | None = None) -> int:
    span = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, span, value)
    if value < low or (high is not None and value > high):
        raise _bad(key, span, value)
    return value


def _number(value: Any, key: str, unit: str, positive: bool = False) -> float:
    span = f"a number of {unit} {'> 0' if positive else '>= 0'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(key, span, value)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise _bad(key, span, value)
    return number


def _str(value: Any, key: str, single_line: bool = False, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _bad(key, "a string", value)
    if single_line and ("\n" in value or "\r" in value):
        raise _bad(key, "a string without line breaks", value)
    if non_empty and not value:
        raise _bad(key, "a non-empty string", value)
    return value


def _normal(name: str) -> str:
    text = name.replace("_", "").replace("-", "").lower()
    return text[2:] if text.startswith("on") else text


def _hook(value: Any, key: str, allow_implemented: bool) -> str:
    names = (IMPLEMENTED, *HOOKS) if allow_implemented else HOOKS
    if isinstance(value, str):
        for name in names:
            if _normal(value) == _normal(name):
                return name
    raise _bad(key, f"a hook name, one of {', '.join(names)}", value)


def _hook_set(value: Any, key: str, allow_implemented: bool) -> frozenset[str]:
    """One hook name, or a list of them."""
    if isinstance(value, str):
        return frozenset([_hook(value, key, allow_implemented)])
    if not isinstance(value, list) or not value:
        raise _bad(key, "a hook name or a non-empty list of hook names", value)
    return frozenset(_hook(v, f"{key}[{i}]", allow_implemented) for i, v in enumerate(value))


# -- sections -----------------------------------------------------------------------------


def _handshake(value: Any) -> HandshakeFault:
    obj = _Object(
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
            line=_str(obj.get("line"), "handshake.line", single_line=True),
            with_certificate="with_certificate" in obj
            and _bool(obj.get("with_certificate"), "handshake.with_certificate"),
        )
    if "exit_before" in obj:
        stderr = None
        if "stderr" in obj:
            stderr = _str(obj.get("stderr"), "handshake.stderr")
        code = _int(obj.get("exit_before"), "handshake.exit_before", 0, 255)
        return HandshakeFault(exit_before=code, stderr=stderr)
    if not _bool(obj.get("close_stdout"), "handshake.close_stdout"):
        raise _bad("handshake.close_stdout", "true (leave the key out otherwise)", False)
    return HandshakeFault(close_stdout=True)


def _noise(value: Any) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        count = _int(value, "noise_before_handshake", 0, MAX_NOISE_LINES)
        return tuple(f"fakeplugin noise line {i} of {count}" for i in range(1, count + 1))
    if not isinstance(value, list):
        raise _bad("noise_before_handshake", "a number of lines or a list of strings", value)
    return tuple(
        _str(v, f"noise_before_handshake[{i}]", single_line=True) for i, v in enumerate(value)
    )


def _crash(value: Any) -> Crash:
    triggers = ("on", "after_hook_calls", "during_http_after_bytes")
    obj = _Object(value, "crash", (*triggers, "exit_code"))
    if not any(k in obj for k in triggers):
        raise ScenarioError(f"crash: expected at least one of {', '.join(triggers)}")
    return Crash(
        on=_hook_set(obj.get("on"), "crash.on", True) if "on" in obj else frozenset(),
        after_hook_calls=(
            _int(obj.get("after_hook_calls"), "crash.after_hook_calls", 1)
            if "after_hook_calls" in obj
            else None
        ),
        during_http_after_bytes=(
            _int(obj.get("during_http_after_bytes"), "crash.during_http_after_bytes", 0)
            if "during_http_after_bytes" in obj
            else None
        ),
        exit_code=(
            _int(obj.get("exit_code"), "crash.exit_code", 0, 255)
            if "exit_code" in obj
            else DEFAULT_CRASH_EXIT_CODE
        ),
    )


def _hang(value: Any) -> Hang:
    obj = _Object(value, "hang", ("hook", "health"))
    if "hook" not in obj and "health" not in obj:
        raise ScenarioError("hang: expected at least one of hook, health")
    hooks = _hook_set(obj.get("hook"), "hang.hook", True) if "hook" in obj else frozenset()
    if "health" not in obj:
        return Hang(hooks=hooks)
    health = obj.get("health")
    if isinstance(health, bool):
        return Hang(hooks=hooks, health=health)
    expected = "true, false, {after_checks: N} or {after_s: S}"
    when = _Object(health, "hang.health", ("after_checks", "after_s"), expected)
    if len(when.data) != 1:
        raise _bad("hang.health", expected, health)
    if "after_checks" in when:
        checks = _int(when.get("after_checks"), "hang.health.after_checks", 0)
        return Hang(hooks=hooks, health=True, health_after_checks=checks)
    seconds = _number(when.get("after_s"), "hang.health.after_s", "seconds")
    return Hang(hooks=hooks, health=True, health_after_s=seconds)


def _health(value: Any) -> Health:
    expected = '"SERVING", "NOT_SERVING", {flap_every_s: S} or {serving_after_s: S}'
    if isinstance(value, str):
        if value not in ("SERVING", "NOT_SERVING"):
            raise _bad("health", expected, value)
        return Health(status=value)
    obj = _Object(value, "health", ("flap_every_s", "serving_after_s"), expected)
    if len(obj.data) != 1:
        raise ScenarioError(
            "health: expected exactly one of flap_every_s, serving_after_s, got "
            f"{', '.join(obj.data) or 'none'}"
        )
    if "serving_after_s" in obj:
        after = _number(obj.get("serving_after_s"), "health.serving_after_s", "seconds")
        return Health(serving_after_s=after)
    return Health(
        flap_every_s=_number(obj.get("flap_every_s"), "health.flap_every_s", "seconds", True)
    )


def _app_error(value: Any, key: str) -> AppErrorSpec:
    obj = _Object(value, key, ("code", "message"))
    if "code" not in obj:
        raise ScenarioError(f"{key}: expected the key code (and optionally message)")
    code = _str(obj.get("code"), f"{key}.code", non_empty=True)
    message = _str(obj.get("message"), f"{key}.message") if "message" in obj else ""
    return AppErrorSpec(code, message)


def _hook_errors(value: Any) -> dict[str, AppErrorSpec]:
    if not isinstance(value, dict):
        raise _bad("hook_errors", "an object {HOOK: {code: C, message: M}, ...}", value)
    errors: dict[str, AppErrorSpec] = {}
    for name, spec in value.items():
        key = f"hook_errors.{name}"
        hook = _hook(name, key, False)
        if hook not in HOOKS_WITH_ERROR:
            raise ScenarioError(
                f"{key}: {hook} has no error in its response; expected one of "
                f"{', '.join(HOOKS_WITH_ERROR)}"
            )
        if hook in errors:
            raise ScenarioError(f"{key}: {hook} is given more than once")
        errors[hook] = _app_error(spec, key)
    return errors


def _filter(value: Any) -> Filter:
    obj = _Object(value, "filter", ("action", "append", "reason"))
    action = "keep"
    if "action" in obj:
        action = obj.get("action")
        if action not in FILTER_ACTIONS:
            raise _bad("filter.action", '"keep", "modify" or "reject"', action)
    if "append" in obj and action != "modify":
        raise ScenarioError('filter.append: only goes with filter.action "modify"')
    if "reason" in obj and action != "reject":
        raise ScenarioError('filter.reason: only goes with filter.action "reject"')
    append = _str(obj.get("append"), "filter.append") if "append" in obj else ""
    reason = (
        _str(obj.get("reason"), "filter.reason") if "reason" in obj else DEFAULT_REJECTION_REASON
    )
    return Filter(action, append, reason)


def _command_response(value: Any) -> CommandResponse:
    obj = _Object(value, "command_response", ("text", "response_type"))
    text = _str(obj.get("text"), "command_response.text") if "text" in obj else None
    response_type = "ephemeral"
    if "response_type" in obj:
        response_type = obj.get("response_type")
        if response_type not in RESPONSE_TYPES:
            raise _bad(
                "command_response.response_type", '"ephemeral" or "in_channel"', response_type
            )
    return CommandResponse(text, response_type)


def _hooks(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise _bad("hooks", "a list of hook names (may be empty)", value)
    names = [_hook(v, f"hooks[{i}]", False) for i, v in enumerate(value)]
    for name in names:
        if names.count(name) > 1:
            raise ScenarioError(f"hooks: {name} is listed more than once")
    return frozenset(names)


def _grandchild(value: Any) -> Grandchild | None:
    if isinstance(value, bool):
        return Grandchild() if value else None
    obj = _Object(value, "spawn_grandchild", ("seconds",), "true, false or {seconds: S}")
    if "seconds" not in obj:
        return Grandchild()
    return Grandchild(_number(obj.get("seconds"), "spawn_grandchild.seconds", "seconds", True))


def _flood(value: Any) -> Flood:
    if isinstance(value, int) and not isinstance(value, bool):
        return Flood(_int(value, "flood_stderr", 0))
    obj = _Object(value, "flood_stderr", ("bytes", "when"), "a number of bytes or an object")
    if "bytes" not in obj:
        raise ScenarioError("flood_stderr: expected the key bytes")
    when = "after"
    if "when" in obj:
        when = obj.get("when")
        if when not in ("after", "before"):
            raise _bad("flood_stderr.when", '"after" or "before" (the handshake)', when)
    return Flood(_int(obj.get("bytes"), "flood_stderr.bytes", 0), when)


MAX_FLOOD_LINE = 64 * 1024 * 1024


def _flood_stdout(value: Any) -> Flood:
    obj = _Object(value, "flood_stdout", ("bytes", "line_bytes"), "an object")
    if "bytes" not in obj:
        raise ScenarioError("flood_stdout: expected the key bytes")
    line = 1024
    if "line_bytes" in obj:
        line = _int(obj.get("line_bytes"), "flood_stdout.line_bytes", 1, MAX_FLOOD_LINE)
    return Flood(_int(obj.get("bytes"), "flood_stdout.bytes", 0), "after", line)


def _record(value: Any, scenario_dir: str) -> Record:
    obj = _Object(value, "record", ("file", "observer", "label"))
    if "file" not in obj and "observer" not in obj:
        raise ScenarioError(
            "record: expected the key file (a path, relative to the scenario), the key "
            'observer (a gRPC target such as "unix:/tmp/x/observer.sock"), or both'
        )
    if "label" in obj and "observer" not in obj:
        raise ScenarioError("record.label: only goes with record.observer")
    path = None
    if "file" in obj:
        path = os.path.join(scenario_dir, _str(obj.get("file"), "record.file", non_empty=True))
    observer = None
    if "observer" in obj:
        observer = _str(obj.get("observer"), "record.observer", single_line=True, non_empty=True)
    label = _str(obj.get("label"), "record.label") if "label" in obj else ""
    return Record(path, observer, label)


def _versions(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("protocol_versions", "a non-empty list of integers >= 1", value)
    return tuple(_int(v, f"protocol_versions[{i}]", 1) for i, v in enumerate(value))


def _cookie(value: Any) -> tuple[str, str]:
    text = _str(value, "magic_cookie")
    key, sep, cookie = text.partition("=")
    if not sep or not key or not cookie:
        raise _bad("magic_cookie", "KEY=VALUE with both parts non-empty", value)
    return key, cookie


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
)
TOP_KEYS = (
    "comment",
    "never_handshake",
    "handshake",
    "noise_before_handshake",
    "slow_start",
    "crash",
    "hang",
    "health",
    "activation_error",
    "hook_errors",
    "filter",
    "command_response",
    "hooks",
    "ignore_shutdown",
    "spawn_grandchild",
    "flood_stderr",
    "flood_stdout",
    "record",
    "hook_delay_ms",
    "network",
    "protocol_versions",
    "magic_cookie",
)


def _all_hook_errors(top: _Object) -> dict[str, AppErrorSpec]:
    """hook_errors, with activation_error as hook_errors.OnActivate."""
    errors = _hook_errors(top.get("hook_errors")) if "hook_errors" in top else {}
    if "activation_error" in top:
        if "OnActivate" in errors:
            raise ScenarioError(
                "activation_error: OnActivate also has hook_errors; give one of the two"
            )
        errors["OnActivate"] = _app_error(top.get("activation_error"), "activation_error")
    return errors


def parse(data: Any, path: str) -> Scenario:
    """Build a Scenario from decoded JSON; raise ScenarioError on any unusable value."""
    top = _Object(data, "", TOP_KEYS)
    values: dict[str, Any] = {}
    if "comment" in top:
        values["comment"] = _str(top.get("comment"), "comment")
    if "never_handshake" in top:
        values["never_handshake"] = _bool(top.get("never_handshake"), "never_handshake")
    if "handshake" in top:
        values["handshake"] = _handshake(top.get("handshake"))
    if "noise_before_handshake" in top:
        values["noise_before_handshake"] = _noise(top.get("noise_before_handshake"))
    if "slow_start" in top:
        values["slow_start_s"] = _number(top.get("slow_start"), "slow_start", "seconds")
    if "crash" in top:
        values["crash"] = _crash(top.get("crash"))
    if "hang" in top:
        values["hang"] = _hang(top.get("hang"))
    if "health" in top:
        values["health"] = _health(top.get("health"))
    values["hook_errors"] = _all_hook_errors(top)
    if "filter" in top:
        values["filter"] = _filter(top.get("filter"))
    if "command_response" in top:
        values["command_response"] = _command_response(top.get("command_response"))
    if "hooks" in top:
        values["hooks"] = _hooks(top.get("hooks"))
    if "ignore_shutdown" in top:
        values["ignore_shutdown"] = _bool(top.get("ignore_shutdown"), "ignore_shutdown")
    if "spawn_grandchild" in top:
        values["spawn_grandchild"] = _grandchild(top.get("spawn_grandchild"))
    if "flood_stderr" in top:
        values["flood_stderr"] = _flood(top.get("flood_stderr"))
    if "flood_stdout" in top:
        values["flood_stdout"] = _flood_stdout(top.get("flood_stdout"))
    if "record" in top:
        values["record"] = _record(top.get("record"), os.path.dirname(os.path.abspath(path)))
    if "hook_delay_ms" in top:
        values["hook_delay_ms"] = _number(top.get("hook_delay_ms"), "hook_delay_ms", "ms")
    if "network" in top:
        network = top.get("network")
        if network not in ("unix", "tcp"):
            raise _bad("network", '"unix" or "tcp"', network)
        values["network"] = network
    if "protocol_versions" in top:
        values["protocol_versions"] = _versions(top.get("protocol_versions"))
    if "magic_cookie" in top:
        values["magic_cookie"] = _cookie(top.get("magic_cookie"))
    scenario = Scenario(path=path, **values)
    _check_combinations(scenario, top)
    return scenario


def _check_combinations(scenario: Scenario, top: _Object) -> None:
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
    crash = scenario.crash
    if (
        crash is not None
        and crash.during_http_after_bytes is not None
        and not scenario.implements("ServeHTTP")
    ):
        raise ScenarioError("crash.during_http_after_bytes: needs ServeHTTP in hooks")


def _check_answers(scenario: Scenario, top: _Object) -> None:
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
