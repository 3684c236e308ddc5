"""Health: the standard gRPC health service, as go-plugin hosts use it."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2

from pluginconf.runner import Profile, case, check, expect, fail
from pluginconf.runner.plugin.target import PluginTarget

_SERVING = health_pb2.HealthCheckResponse.SERVING
_UNKNOWN_SERVICE = "pluginconf.no-such-service"


def _name(status: int) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


@case("plugin/health/serving", requirements=["HL-1", "HL-2"], profile=Profile.TRANSPORT)
async def serving(t: PluginTarget) -> None:
    """
    Purpose: A running plugin says it can take calls.
    Procedure: Call grpc.health.v1.Health/Check for the services "plugin" and "".
    Asserts: Check is served (HL-1) and both answer SERVING (HL-2).
    """
    shared = await t.shared()
    for service in ("plugin", ""):
        t.step(f"checking the health of {service!r}")
        try:
            reply = await shared.health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            rule = "HL-1" if exc.code() == grpc.StatusCode.UNIMPLEMENTED else "HL-2"
            check(
                False,
                f"Check({service!r}) failed with {exc.code().name}: {exc.details()}",
                requirement=rule,
            )
            continue
        check(
            reply.status == _SERVING,
            f"Check({service!r}) answered {_name(reply.status)}, expected SERVING",
            requirement="HL-2",
        )


@case("plugin/health/unknown-service", requirements=["HL-3"], profile=Profile.TRANSPORT)
async def unknown_service(t: PluginTarget) -> None:
    """
    Purpose: Health checks for services the plugin does not have are told apart.
    Procedure: Call Health/Check for a service name the plugin cannot know.
    Asserts: The call fails with NOT_FOUND.
    """
    shared = await t.shared()
    try:
        reply = await shared.health.Check(
            health_pb2.HealthCheckRequest(service=_UNKNOWN_SERVICE), timeout=10
        )
    except grpc.aio.AioRpcError as exc:
        expect(
            exc.code() == grpc.StatusCode.NOT_FOUND,
            f"Check({_UNKNOWN_SERVICE!r}) failed with {exc.code().name}, expected NOT_FOUND",
        )
        return
    fail(f"Check({_UNKNOWN_SERVICE!r}) answered {_name(reply.status)}, expected NOT_FOUND")
