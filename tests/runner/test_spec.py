"""The shipped copy of docs/SPEC.md's requirements (runner/spec.py): texts and origins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pluginconf.runner.spec import Origin, Requirement, origins_label, requirements

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_copy_matches_the_spec():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "genrequirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_requirement_names_its_origin_and_pluginconf_rules_say_why():
    for requirement in requirements().values():
        assert requirement.origin in set(Origin)
        if requirement.origin is Origin.PLUGINCONF:
            assert requirement.rationale, requirement.id
        if requirement.since:
            assert requirement.origin is Origin.GO_PLUGIN, requirement.id


def test_requirements_load_with_their_fields():
    known = requirements()
    assert all(rid == r.id for rid, r in known.items())
    assert {r.binds for r in known.values()} == {"plugin", "host", "both"}
    assert {r.level for r in known.values()} <= {"MUST", "SHOULD", "MAY"}
    assert all(r.text for r in known.values())
    assert known["CT-10"].origin is Origin.GO_PLUGIN
    assert known["CT-3"].origin is Origin.PLUGINCONF
    assert known["CT-3"].applies_to("plugin") and not known["CT-3"].applies_to("host")
    both = next(r for r in known.values() if r.binds == "both")
    assert both.applies_to("plugin") and both.applies_to("host")


def test_a_versioned_go_plugin_rule_has_a_label_and_an_upgrade_hint():
    tr1 = requirements()["TR-1"]
    assert tr1.since == "1.5.0"
    assert tr1.origin_label == "go-plugin >= 1.5.0"
    assert "upgrade go-plugin to 1.5.0 or later" in tr1.upgrade_hint()
    assert requirements()["CT-10"].origin_label == "go-plugin"
    assert requirements()["CT-10"].upgrade_hint() == ""
    # A version on a rule of another origin gives no hint: only go-plugin has releases to name.
    own = Requirement("X-1", "plugin", "MUST", "t", Origin.PLUGINCONF, since="2.0")
    assert own.upgrade_hint() == ""


def test_origins_are_labelled_in_origin_order():
    assert origins_label({Origin.PLUGINCONF, Origin.GO_PLUGIN}) == "go-plugin+pluginconf"
    assert origins_label(frozenset(Origin)) == "go-plugin+mattermost+pluginconf.v1+pluginconf"
    assert origins_label(set()) == ""
