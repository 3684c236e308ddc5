"""Reading JSON values for a scenario key: each reader names the key and what it expected."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from typing import Any

from pluginconf.fake.scenario.model import ScenarioError
from pluginconf.protocol.hooks import HOOKS, IMPLEMENTED

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


def bad_value(key: str, expected: str, value: Any) -> ScenarioError:
    return ScenarioError(f"{key}: expected {expected}, got {_show(value)} ({_type_name(value)})")


class JSONObject:
    """A JSON object being read: every key must be one of ``known``."""

    def __init__(self, value: Any, where: str, known: Iterable[str], expected: str = "") -> None:
        if not isinstance(value, dict):
            raise bad_value(where or "the scenario", expected or "a JSON object", value)
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


def as_bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise bad_value(key, "true or false", value)
    return value


def as_int(value: Any, key: str, low: int, high: int | None = None) -> int:
    span = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_value(key, span, value)
    if value < low or (high is not None and value > high):
        raise bad_value(key, span, value)
    return value


def as_number(value: Any, key: str, unit: str, positive: bool = False) -> float:
    span = f"a number of {unit} {'> 0' if positive else '>= 0'}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_value(key, span, value)
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise bad_value(key, span, value)
    return number


def as_str(value: Any, key: str, single_line: bool = False, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise bad_value(key, "a string", value)
    if single_line and ("\n" in value or "\r" in value):
        raise bad_value(key, "a string without line breaks", value)
    if non_empty and not value:
        raise bad_value(key, "a non-empty string", value)
    return value


def _normal(name: str) -> str:
    text = name.replace("_", "").replace("-", "").lower()
    return text[2:] if text.startswith("on") else text


def as_hook(value: Any, key: str, allow_implemented: bool) -> str:
    names = (IMPLEMENTED, *HOOKS) if allow_implemented else HOOKS
    if isinstance(value, str):
        for name in names:
            if _normal(value) == _normal(name):
                return name
    raise bad_value(key, f"a hook name, one of {', '.join(names)}", value)


def as_hook_set(value: Any, key: str, allow_implemented: bool) -> frozenset[str]:
    """One hook name, or a list of them."""
    if isinstance(value, str):
        return frozenset([as_hook(value, key, allow_implemented)])
    if not isinstance(value, list) or not value:
        raise bad_value(key, "a hook name or a non-empty list of hook names", value)
    return frozenset(as_hook(v, f"{key}[{i}]", allow_implemented) for i, v in enumerate(value))
