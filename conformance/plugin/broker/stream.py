"""The broker: the stream that lets each side offer the other further services."""

from __future__ import annotations

import asyncio

import grpc

from pluginconf._grpc_compat import EOF
from pluginconf.goplugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from pluginconf.host.client import health_problem
from pluginconf.runner import Profile, case, expect, fail
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import announce


@case(
    "plugin/broker/unusable-announcements", requirements=["BR-1", "BR-9"], profile=Profile.TRANSPORT
)
async def unusable_announcements(t: PluginTarget) -> None:
    """
    Purpose: The broker stream survives announcements the plugin cannot use.
    Procedure: Open plugin.GRPCBroker/StartStream on a new plugin process and announce an id
      with an unknown network and an id at an address that does not exist; wait 500 ms.
    Asserts: StartStream is served (BR-1); the stream is still open (neither ended nor
      failed), and the plugin still answers health checks with SERVING (BR-9).
    """
    fresh = await t.launch()
    stub = grpc_broker_pb2_grpc.GRPCBrokerStub(fresh.connection)
    call = stub.StartStream(None)
    try:
        t.step("announcing unusable broker ids")
        for unusable in (
            grpc_broker_pb2.ConnInfo(service_id=4242, network="udp", address="x"),
            grpc_broker_pb2.ConnInfo(
                service_id=4243, network="unix", address="/nonexistent/pluginconf.sock"
            ),
        ):
            # A plugin that ends the stream on the first may do so before the second is sent.
            await announce(
                call,
                unusable,
                why="after an unusable announcement",
                requirement="BR-9",
                unserved="BR-1",
            )
        try:
            got = await asyncio.wait_for(call.read(), 0.5)
        except TimeoutError:
            pass  # still open: what we want
        except grpc.aio.AioRpcError as exc:
            unserved = exc.code() == grpc.StatusCode.UNIMPLEMENTED
            fail(
                f"the broker stream failed after unusable announcements: "
                f"{exc.code().name}: {exc.details()}",
                requirement="BR-1" if unserved else "BR-9",
            )
        else:
            expect(
                got is not EOF,
                "the plugin ended the broker stream after unusable announcements",
                requirement="BR-9",
            )
        problem = await health_problem(fresh.health, 10.0)
        expect(problem is None, f"after the unusable announcements: {problem}", requirement="BR-9")
    finally:
        call.cancel()
