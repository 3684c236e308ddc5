"""Helpers the crash cases share."""

from __future__ import annotations

from pluginconf.control import control_pb2
from pluginconf.fake.scenario.spec import ScenarioSpec
from pluginconf.runner import fail
from pluginconf.runner.host.fake_plugin import describe_status

HANG: ScenarioSpec = {"hang": {"hook": "ExecuteCommand"}}


def index_of(
    status: control_pb2.PluginStatus, state: str, after: int = 0
) -> tuple[int, control_pb2.Transition]:
    """The first transition into ``state`` from index ``after`` on, and its index."""
    for i in range(after, len(status.transitions)):
        if status.transitions[i].new_state == state:
            return i, status.transitions[i]
    fail(f"no transition into {state!r} after index {after}:\n{describe_status(status)}")
