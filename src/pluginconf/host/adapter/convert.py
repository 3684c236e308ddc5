"""Between HostControl messages (pluginconf.conformance.v1) and the reference host's types.

A HostPolicy field left at 0 keeps the host's default; every duration in it is milliseconds.
"""

from __future__ import annotations

import dataclasses

from pluginconf.control import control_pb2
from pluginconf.host.client import HookError
from pluginconf.host.environment import FilterResult, HookFailure
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.manifest import valid_plugin_id
from pluginconf.host.supervision.config import SupervisorConfig
from pluginconf.host.supervision.states import StateEvent
from pluginconf.host.supervision.supervisor import Supervisor

# The state of a plugin that was never enabled: not a state of SV-1, HostControl's own.
LOADED = "loaded"


def _seconds(ms: int, default: float) -> float:
    return ms / 1000.0 if ms else default


def manifest_problem(manifest: control_pb2.PluginManifest) -> str:
    """Why the manifest cannot be loaded, or "" when it can."""
    if not valid_plugin_id(manifest.id):
        return (
            f"plugin id {manifest.id!r} is not valid: use letters, digits, '.', '_' or '-' "
            "(it is also the plugin's HTTP mount, /plugins/ID/)"
        )
    if not manifest.command or not manifest.command[0]:
        return f"plugin {manifest.id!r}: manifest.command is empty; give the program and its args"
    return ""


def launch_spec(manifest: control_pb2.PluginManifest, policy: control_pb2.HostPolicy) -> LaunchSpec:
    default = LaunchSpec(argv=())
    return LaunchSpec(
        argv=list(manifest.command),
        plugin_id=manifest.id,
        env=dict(manifest.env),
        start_timeout_s=_seconds(policy.start_timeout_ms, default.start_timeout_s),
        auto_mtls=policy.auto_mtls,
    )


def supervisor_config(
    policy: control_pb2.HostPolicy, base: SupervisorConfig | None = None
) -> SupervisorConfig:
    base = base or SupervisorConfig()
    client = dataclasses.replace(
        base.client,
        hook_timeout_s=_seconds(policy.hook_timeout_ms, base.client.hook_timeout_s),
        # SERVING is part of the start (HL-6): it gets the start timeout too.
        ready_timeout_s=_seconds(policy.start_timeout_ms, base.client.ready_timeout_s),
        health_timeout_s=_seconds(policy.health_timeout_ms, base.client.health_timeout_s),
    )
    grace = policy.stop_grace_ms
    return dataclasses.replace(
        base,
        client=client,
        health_interval_s=_seconds(policy.health_interval_ms, base.health_interval_s),
        backoff_base_s=_seconds(policy.backoff_base_ms, base.backoff_base_s),
        backoff_max_s=_seconds(policy.backoff_max_ms, base.backoff_max_s),
        restart_limit=policy.restart_limit or base.restart_limit,
        restart_window_s=_seconds(policy.restart_window_ms, base.restart_window_s),
        breaker_threshold=policy.breaker_threshold or base.breaker_threshold,
        breaker_cooldown_s=_seconds(policy.breaker_cooldown_ms, base.breaker_cooldown_s),
        # Each wait of SV-14 after OnDeactivate, whose 10 s the SPEC fixes (LC-9).
        shutdown_timeout_s=_seconds(grace, base.shutdown_timeout_s),
        exit_grace_s=_seconds(grace, base.exit_grace_s),
        term_grace_s=_seconds(grace, base.term_grace_s),
        max_body_bytes=policy.max_request_body_bytes or base.max_body_bytes,
    )


def transition(event: StateEvent) -> control_pb2.Transition:
    message = control_pb2.Transition(
        old_state=event.old.value if event.old is not None else "",
        new_state=event.new.value,
        wall_time=event.at,
        reason=event.reason,
        error_kind=event.error_kind,
        stderr_tail=event.stderr_tail,
    )
    if event.exit_status is not None:
        message.has_exit_status = True
        message.exit_status = event.exit_status
    return message


def plugin_status(supervisor: Supervisor) -> control_pb2.PluginStatus:
    """The supervisor as it is now; called from a state listener, as of that change."""
    client, process = supervisor.client, supervisor.process
    return control_pb2.PluginStatus(
        plugin_id=supervisor.plugin_id,
        state=supervisor.state.value if supervisor.state is not None else LOADED,
        last_error=supervisor.last_error,
        pid=process.pid if process is not None else 0,
        transitions=[transition(e) for e in supervisor.events],
        implemented=sorted(client.implemented) if client is not None else [],
    )


def host_error(failure: HookFailure | HookError) -> control_pb2.HostError:
    if isinstance(failure, HookError):
        failure = HookFailure.of(failure)
    return control_pb2.HostError(kind=failure.kind, message=failure.message, code=failure.code)


def app_error(code: str, message: str) -> control_pb2.HostError:
    return control_pb2.HostError(kind="app_error", code=code, message=message)


def filter_outcome(result: FilterResult) -> control_pb2.FilterOutcome:
    return control_pb2.FilterOutcome(
        post=result.post,
        rejected=result.rejected,
        rejected_by=result.rejected_by,
        rejection_reason=result.reason,
        steps=[
            control_pb2.FilterStep(
                plugin_id=step.plugin_id,
                outcome=step.outcome,
                error=host_error(step.error) if step.error is not None else None,
            )
            for step in result.steps
        ],
    )


def notify_outcome(outcomes: dict[str, HookFailure | None]) -> control_pb2.NotifyOutcome:
    return control_pb2.NotifyOutcome(
        results=[
            control_pb2.NotifyResult(
                plugin_id=plugin_id,
                error=host_error(failure) if failure is not None else None,
            )
            for plugin_id, failure in outcomes.items()
        ]
    )
