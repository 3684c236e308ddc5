"""The HostPolicy a host case sends: seconds to milliseconds, and checked as it is made."""

from __future__ import annotations

import pytest

from pluginconf.control import control_pb2
from pluginconf.runner.host.manifest import PolicyFields, host_policy


def test_seconds_become_milliseconds_and_counts_stay():
    policy = host_policy(backoff_base_s=0.1, stop_grace_s=0.0001, restart_limit=3, auto_mtls=True)
    assert policy.backoff_base_ms == 100
    assert policy.stop_grace_ms == 1  # never 0: 0 means the host's default
    assert (policy.restart_limit, policy.auto_mtls) == (3, True)


def test_every_typed_field_is_a_field_of_the_message():
    fields = set(control_pb2.HostPolicy.DESCRIPTOR.fields_by_name)
    for key in PolicyFields.__optional_keys__:
        wire = key[: -len("_s")] + "_ms" if key.endswith("_s") else key
        assert wire in fields, key


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backof_base_s": 1}, "unknown host policy field 'backof_base_s'; the fields are"),
        ({"restart_limit": True}, "'restart_limit' is True; expected int"),
        ({"auto_mtls": 1}, "'auto_mtls' is 1; expected bool"),
        ({"hook_timeout_s": "2"}, "'hook_timeout_s' is '2'; expected seconds >= 0"),
        ({"hook_timeout_s": -1}, "'hook_timeout_s' is -1; expected seconds >= 0"),
    ],
)
def test_a_wrong_field_is_named(fields, message):
    with pytest.raises(TypeError) as caught:
        host_policy(**fields)
    assert message in str(caught.value)
