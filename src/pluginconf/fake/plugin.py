"""The fake's hooks as a pluginconf.plugin.Plugin: correct answers, or the scenario's errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pluginconf.fake.hostapi_calls import HostAPICaller
from pluginconf.fake.http_app import FakeApp
from pluginconf.fake.scenario.hostapi import HostAPIScenarioError, Op, parse_command
from pluginconf.fake.scenario.model import (
    Scenario,
)
from pluginconf.fake.services import RecordingBroker
from pluginconf.plugin import AppError, Plugin
from pluginconf.plugin.errors import BrokerError
from pluginconf.v1 import hooks_pb2

if TYPE_CHECKING:
    from pluginconf.fake.process import Runner

FILTER_ACTIONS = {
    "keep": hooks_pb2.FILTER_ACTION_KEEP,
    "modify": hooks_pb2.FILTER_ACTION_MODIFY,
    "reject": hooks_pb2.FILTER_ACTION_REJECT,
}


class FakePlugin(Plugin):
    """A minimal correct plugin: every hook answers without error (ExecuteCommand echoes the
    command), unless the scenario limits the hooks, makes some answer an AppError
    (hook_errors), or shapes the filter's or the command's answer."""

    def __init__(
        self, scenario: Scenario, app: FakeApp, runner: Runner, broker: RecordingBroker
    ) -> None:
        self._scenario = scenario
        self._app = app
        self._rec = runner.rec
        self._broker = broker
        self._caller = HostAPICaller(None, "OnActivate has not come yet")
        self._configuration_calls = 0
        self._activated = False  # configuration_error_after_activation applies from then

    async def _host_api_ops(self, hook: str, ops: tuple[Op, ...] | None = None) -> list[Any]:
        """Run the scenario's HostAPI operations for ``hook`` (or ``ops``), each recorded."""
        spec = self._scenario.host_api
        if ops is None:
            ops = spec.on.get(hook, ()) if spec is not None else ()
        results = []
        for index, op in enumerate(ops):
            result = await self._caller.run(op)
            self._rec.event("host_api", hook=hook, index=index, result=result)
            results.append(result)
        return results

    async def _dial_host_api(self, broker_id: int) -> None:
        announced_before = broker_id in self._broker.announced_at_activate
        error = ""
        if broker_id == 0:
            self._caller = HostAPICaller(None, "OnActivate gave broker id 0")
        else:
            try:
                self._caller = HostAPICaller(await self._broker.dial(broker_id))
            except BrokerError as exc:
                error = str(exc)
                self._caller = HostAPICaller(None, error)
        self._rec.event(
            "host_api_dial",
            broker_id=broker_id,
            ok=not error and broker_id != 0,
            error=error,
            announced_before=announced_before,
        )

    def implemented_hooks(self) -> list[str]:
        return [h for h in super().implemented_hooks() if self._scenario.implements(h)]

    def _fail_if_asked(self, hook: str) -> None:
        """Raise the scenario's AppError for ``hook``; the SDK answers it in ``error``."""
        error = self._scenario.hook_errors.get(hook)
        if error is not None:
            raise AppError(error.code, error.message)

    async def on_configuration_change(
        self, request: hooks_pb2.OnConfigurationChangeRequest
    ) -> hooks_pb2.OnConfigurationChangeResponse:
        await self._host_api_ops("OnConfigurationChange")
        self._fail_if_asked("OnConfigurationChange")
        self._configuration_calls += 1
        late = self._scenario.configuration_error_from_call
        if late is not None and self._configuration_calls >= late.call:
            raise AppError(late.error.code, late.error.message)
        refused = self._scenario.configuration_error_after_activation
        if refused is not None and self._activated:
            raise AppError(refused.code, refused.message)
        return hooks_pb2.OnConfigurationChangeResponse()

    async def on_activate(
        self, request: hooks_pb2.OnActivateRequest
    ) -> hooks_pb2.OnActivateResponse:
        if self._scenario.host_api is not None:
            await self._dial_host_api(request.host_api_broker_id)
            await self._host_api_ops("OnActivate")
        self._fail_if_asked("OnActivate")
        self._activated = True
        return hooks_pb2.OnActivateResponse()

    async def on_deactivate(
        self, request: hooks_pb2.OnDeactivateRequest
    ) -> hooks_pb2.OnDeactivateResponse:
        await self._host_api_ops("OnDeactivate")
        self._fail_if_asked("OnDeactivate")
        return hooks_pb2.OnDeactivateResponse()

    async def message_has_been_posted(
        self, request: hooks_pb2.MessageHasBeenPostedRequest
    ) -> hooks_pb2.MessageHasBeenPostedResponse:
        return hooks_pb2.MessageHasBeenPostedResponse()

    async def message_will_be_posted(
        self, request: hooks_pb2.MessageWillBePostedRequest
    ) -> hooks_pb2.MessageWillBePostedResponse:
        self._fail_if_asked("MessageWillBePosted")
        raw = self._scenario.filter_raw
        if raw is not None:  # an action number and post as given, however odd
            odd = hooks_pb2.MessageWillBePostedResponse()
            odd.action = raw.action  # type: ignore[assignment]  # any number, unknown ones too
            if raw.post:  # changed, so that a host passing it on shows
                odd.post.CopyFrom(request.post)
                odd.post.message += " [raw]"
            return odd
        spec = self._scenario.filter
        answer = hooks_pb2.MessageWillBePostedResponse(action=FILTER_ACTIONS[spec.action])
        if spec.action == "modify":
            answer.post.CopyFrom(request.post)  # every field kept, the text appended
            answer.post.message += spec.append
            for key in spec.drop_props:
                answer.post.props.pop(key, None)
        elif spec.action == "reject":
            answer.rejection_reason = spec.reason
        return answer

    async def execute_command(
        self, request: hooks_pb2.ExecuteCommandRequest
    ) -> hooks_pb2.ExecuteCommandResponse:
        host_api = self._scenario.host_api
        if host_api is not None and host_api.commands:
            try:
                ops = parse_command(request.command)
            except HostAPIScenarioError as exc:
                raise AppError("bad_command", str(exc)) from None
            if ops is not None:
                results = await self._host_api_ops("ExecuteCommand", ops)
                return hooks_pb2.ExecuteCommandResponse(
                    text=json.dumps(results, ensure_ascii=False), response_type="ephemeral"
                )
        await self._host_api_ops("ExecuteCommand")
        self._fail_if_asked("ExecuteCommand")
        spec = self._scenario.command_response
        text = request.command if spec.text is None else spec.text
        answer = hooks_pb2.ExecuteCommandResponse(text=text, response_type=spec.response_type)
        if spec.message_bytes is not None:
            answer.text = ""
            # The text's length prefix grows with it: pad until the whole message fits exactly.
            while answer.ByteSize() < spec.message_bytes:
                answer.text += "x" * max(1, spec.message_bytes - answer.ByteSize() - 5)
            while answer.ByteSize() > spec.message_bytes:
                answer.text = answer.text[:-1]
        return answer

    def http_app(self) -> FakeApp | None:
        return self._app if self._scenario.implements("ServeHTTP") else None
