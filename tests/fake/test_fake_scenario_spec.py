"""The scenario's types (fake/scenario/spec.py) name the keys the loader knows, no more, no less."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any, Literal, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from pluginconf.fake.scenario import spec
from pluginconf.fake.scenario.hostapi import OPS
from pluginconf.fake.scenario.load import TOP_KEYS, parse
from pluginconf.fake.scenario.model import ScenarioError
from pluginconf.protocol.hooks import HOOKS, IMPLEMENTED


def _keys(*types: Any) -> set[str]:
    """The keys of these TypedDicts, or of the TypedDicts in these unions."""
    keys: set[str] = set()
    for typ in types:
        members = [typ] if is_typeddict(typ) else [t for t in get_args(typ) if is_typeddict(t)]
        assert members, f"{typ} is no TypedDict and holds none"
        for member in members:
            keys |= set(member.__annotations__)
    return keys


def _known_keys(data: dict[str, Any]) -> set[str]:
    """The keys the loader knows where ``data`` puts an unknown one (its error lists them)."""
    with pytest.raises(ScenarioError) as error:
        parse(data, "probe.json")
    found = re.search(r"unknown key.*\(known keys(?: of [^:]*)?: ([^)]*)\)", str(error.value))
    assert found, str(error.value)
    return set(found.group(1).split(", "))


def _probe(*path: str) -> dict[str, Any]:
    """A scenario with an unknown key in the object at ``path``."""
    data: Any = {"no_such_key": 1}
    for step in reversed(path):
        data = [data] if step == "[0]" else {step: data}
    return dict(data)


# Where each section of the file is: the probe, and its type(s) in spec.py.
SECTIONS: list[tuple[dict[str, Any], tuple[Any, ...]]] = [
    (_probe("handshake"), (spec.HandshakeSection,)),
    (_probe("crash"), (spec.CrashSection,)),
    (_probe("hang"), (spec.HangSection,)),
    (_probe("hang", "health"), (spec.HangAfterChecks, spec.HangAfterSeconds)),
    (_probe("health"), (spec.HealthSection,)),
    (_probe("activation_error"), (spec.AppErrorSection,)),
    (_probe("hook_errors", "OnActivate"), (spec.AppErrorSection,)),
    (_probe("configuration_error_after_activation"), (spec.AppErrorSection,)),
    (_probe("filter"), (spec.FilterSection,)),
    (_probe("command_response"), (spec.CommandResponseSection,)),
    (_probe("spawn_grandchild"), (spec.GrandchildSection,)),
    (_probe("flood_stderr"), (spec.FloodStderrSection,)),
    (_probe("flood_stdout"), (spec.FloodStdoutSection,)),
    (_probe("record"), (spec.RecordSection,)),
    (_probe("host_api"), (spec.HostAPISection,)),
    (_probe("broker"), (spec.BrokerSection,)),
    (_probe("broker", "send", "[0]"), (spec.ConnInfoSection,)),
    (_probe("tls"), (spec.TLSSection,)),
    (_probe("filter_raw"), (spec.FilterRawSection,)),
    (_probe("configuration_error_from_call"), (spec.ConfigurationErrorFromCallSection,)),
]


def _literal_values(typ: Any) -> tuple[Any, ...]:
    """The values of a Literal, or of a union of Literals."""
    args = get_args(typ)
    if all(get_origin(a) is Literal for a in args):
        return tuple(v for a in args for v in get_args(a))
    return args


def _op_name(op_type: Any) -> str:
    """The value of an op TypedDict's ``op`` key."""
    (name,) = _literal_values(get_type_hints(op_type)["op"])
    return str(name)


def test_the_top_level_keys_are_the_loaders_in_its_order():
    assert tuple(spec.ScenarioSpec.__annotations__) == TOP_KEYS


@pytest.mark.parametrize(("probe", "types"), SECTIONS, ids=[str(p) for p, _ in SECTIONS])
def test_each_section_has_the_loaders_keys(probe, types):
    assert _keys(*types) == _known_keys(probe)


@pytest.mark.parametrize("op_type", get_args(spec.HostAPIOp), ids=lambda t: t.__name__)
def test_each_host_api_op_has_the_loaders_keys(op_type):
    name = _op_name(op_type)
    probe = {"host_api": {"OnActivate": [{"op": name, "no_such_key": 1}]}}
    assert _keys(op_type) == _known_keys(probe)


def test_the_host_api_ops_are_one_each():
    assert tuple(_op_name(t) for t in get_args(spec.HostAPIOp)) == OPS


def test_hook_names_with_implemented_are_every_hooks_method():
    assert _literal_values(spec.HookOrImplemented) == (*HOOKS, IMPLEMENTED)


def test_every_typeddict_is_checked_against_the_loader():
    checked = {t for _, types in SECTIONS for typ in types for t in (typ, *get_args(typ))}
    checked |= {spec.ScenarioSpec, *get_args(spec.HostAPIOp)}
    declared = {v for v in vars(spec).values() if is_typeddict(v)}
    assert declared <= checked, sorted(t.__name__ for t in declared - checked)


def test_the_types_import_only_the_standard_library_and_the_protocol_names():
    code = (
        "import json, sys, pluginconf.fake.scenario.spec\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('grpc', 'google', "
        "'pluginconf.')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = json.loads(out.stdout)
    assert "pluginconf.fake.scenario.spec" in imported
    others = [m for m in imported if not m.startswith(("pluginconf.fake", "pluginconf.protocol"))]
    assert others == []
