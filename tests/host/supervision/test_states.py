"""SV-1's table in host/supervision/states.py is the SPEC's, and the supervisor keeps to it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.states import TRANSITIONS, PluginState, transition_allowed
from pluginconf.host.supervision.supervisor import Supervisor

SPEC = Path(__file__).resolve().parents[3] / "docs" / "SPEC.md"


def _spec_section_17() -> str:
    text = SPEC.read_text()
    start = text.index("## 17. Supervision, host side (SV)")
    return text[start : text.index("- **SV-1**", start) + 400]


def _spec_transitions() -> set[tuple[str, str]]:
    """The (from, to) pairs of the SPEC's table of plugin states; "" for (none)."""
    pairs: set[tuple[str, str]] = set()
    for line in _spec_section_17().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("From", "---"):
            continue
        olds = [o.strip().strip("`") for o in cells[0].split(",")]
        new = cells[2].strip("`")
        pairs |= {("" if old == "(none)" else old, new) for old in olds}
    return pairs


def test_the_table_is_the_spec_table() -> None:
    spec = _spec_transitions()
    assert len(spec) == 15
    assert spec == TRANSITIONS


def test_the_states_are_those_sv1_names() -> None:
    sv1 = re.search(r"- \*\*SV-1\*\*[^\n]*", _spec_section_17())
    assert sv1 is not None
    named = set(re.findall(r"`([a-z-]+)`", sv1.group(0)))
    assert named == {state.value for state in PluginState}
    assert {new for _, new in TRANSITIONS} <= named


def test_none_is_the_empty_string() -> None:
    assert transition_allowed(None, PluginState.STARTING)
    assert not transition_allowed(None, PluginState.ACTIVE)
    assert transition_allowed(PluginState.CRASHED, PluginState.RESTARTING)
    assert not transition_allowed(PluginState.CRASHED, PluginState.STARTING)


async def test_the_supervisor_refuses_a_transition_outside_the_table() -> None:
    supervisor = Supervisor("p", LaunchSpec(argv=["unused"]))
    with pytest.raises(RuntimeError, match="None -> active is not allowed"):
        await supervisor._transition(PluginState.ACTIVE)
    assert supervisor.events == []
    await supervisor._transition(PluginState.STARTING)
    assert [(e.old, e.new) for e in supervisor.events] == [(None, PluginState.STARTING)]
