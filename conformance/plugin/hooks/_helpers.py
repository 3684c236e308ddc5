"""Helpers the hooks cases share."""

from __future__ import annotations

from pluginconf.runner.plugin.shared import SUITE_CONFIGURATION, SUITE_PLUGIN_ID
from pluginconf.v1 import hooks_pb2

from .._helpers import post

PROBE_POST = post(id="pluginconf-probe", channel_id="c", user_id="u", message="probe")


# Requests for each hook that any plugin should take as ordinary calls.
PROBE_REQUESTS = {
    "OnConfigurationChange": hooks_pb2.OnConfigurationChangeRequest(
        configuration=SUITE_CONFIGURATION
    ),
    "OnActivate": hooks_pb2.OnActivateRequest(plugin_id=SUITE_PLUGIN_ID),
    "MessageHasBeenPosted": hooks_pb2.MessageHasBeenPostedRequest(post=PROBE_POST),
    "MessageWillBePosted": hooks_pb2.MessageWillBePostedRequest(post=PROBE_POST),
    "ExecuteCommand": hooks_pb2.ExecuteCommandRequest(command="/pluginconf-probe"),
    "OnDeactivate": hooks_pb2.OnDeactivateRequest(),
}
