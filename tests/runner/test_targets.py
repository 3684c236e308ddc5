"""Targets (runner/targets.py): the presets of each application's host, found by name."""

from __future__ import annotations

import pytest

from pluginconf.runner.spec import Origin
from pluginconf.runner.targets import (
    DEFAULT_TARGET,
    TARGETS,
    AutoMTLS,
    UnknownTarget,
    target_named,
)


def test_targets_preset_what_their_applications_hosts_do():
    names = {t.name for t in TARGETS}
    assert names >= {
        "pluginconf", "go-plugin", "terraform", "vault", "vault-database", "nomad", "tflint",
        "waypoint", "mattermost",
    }  # fmt: skip
    terraform = target_named("terraform")
    assert terraform.protocol_versions == (5, 6) and terraform.auto_mtls is AutoMTLS.ALWAYS
    assert terraform.magic_cookie.key == "TF_PLUGIN_MAGIC_COOKIE"
    assert terraform.go_plugin_based and not target_named("pluginconf").go_plugin_based
    assert target_named("mattermost").protocol == "netrpc"


def test_an_unknown_target_names_every_known_one():
    with pytest.raises(UnknownTarget) as raised:
        target_named("terraform-ish")
    message = str(raised.value)
    assert message.startswith("--target 'terraform-ish' is not a known target; expected one of ")
    assert ", ".join(t.name for t in TARGETS) in message
    assert "`pluginconf list targets`" in message
    assert isinstance(raised.value, ValueError)  # argparse and callers treat it as a usage error


def test_names_are_unique_and_only_pluginconf_decides_by_every_rule():
    assert len({t.name for t in TARGETS}) == len(TARGETS)
    assert target_named(DEFAULT_TARGET).decisive == frozenset(Origin)
    for target in TARGETS:
        assert target_named(target.name) is target
        assert target.source and target.summary
        if target.name != "pluginconf":
            assert target.decisive == frozenset(Origin) - {Origin.PLUGINCONF}, target.name
