"""The hook names of protocol/hooks.py agree with hooks.proto and with the SDK."""

from __future__ import annotations

from pluginconf.plugin import Plugin
from pluginconf.protocol.hooks import HOOKS, HOOKS_WITH_APP_ERROR, IMPLEMENTED, LIFECYCLE_HOOKS
from pluginconf.v1 import hooks_pb2

SERVICE = hooks_pb2.DESCRIPTOR.services_by_name["Hooks"]


def test_the_hooks_are_the_service_methods_in_order():
    assert (IMPLEMENTED, *HOOKS) == tuple(m.name for m in SERVICE.methods)


def test_the_sdk_dispatches_the_same_hooks_in_the_same_order():
    assert tuple(Plugin.HOOK_METHODS) == HOOKS


def test_the_hooks_with_an_app_error_are_those_whose_response_has_one():
    with_error = tuple(m.name for m in SERVICE.methods if "error" in m.output_type.fields_by_name)
    assert with_error == HOOKS_WITH_APP_ERROR


def test_lifecycle_hooks_are_hooks():
    assert set(LIFECYCLE_HOOKS) < set(HOOKS)
