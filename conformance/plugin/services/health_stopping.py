"""Health while stopping: a host's probe sees the stop coming."""

from __future__ import annotations

import asyncio
import signal

import grpc
from grpc_health.v1 import health_pb2

from pluginconf._grpc_compat import EOF
from pluginconf.runner import Level, Profile, case, check, skip
from pluginconf.runner.plugin.target import PluginTarget

# A deadlock guard for the Watch stream's answers (HL-5 sets no bound).
_WATCH_GUARD_S = 10.0
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _name(status: int) -> str:
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))


@case(
    "plugin/health/not-serving-when-stopping",
    requirements=["HL-5"],
    profile=Profile.TRANSPORT,
    level=Level.SHOULD,
)
async def not_serving_when_stopping(t: PluginTarget) -> None:
    """
    Purpose: A host watching the plugin's health sees it stop instead of a transport error.
    Procedure: On each of two new processes, open Health/Watch for "plugin" and read its first
      answer; then stop the first with Shutdown and the second with SIGTERM, and read the
      Watch stream until it ends (10 s at most).
    Asserts: The stream answers SERVING first and NOT_SERVING before it ends, after Shutdown
      as after SIGTERM. A plugin without Health/Watch is skipped: polling Check could miss a
      short NOT_SERVING.
    """
    for how in ("Shutdown", "SIGTERM"):
        fresh = await t.launch()
        watch = fresh.health.Watch(health_pb2.HealthCheckRequest(service="plugin"))
        seen: list[str] = []
        try:
            async with asyncio.timeout(_WATCH_GUARD_S):
                first = await watch.read()
                seen.append(_name(first.status))
                if how == "Shutdown":
                    await fresh.request_shutdown()
                else:
                    fresh.signal(signal.SIGTERM)
                while (reply := await watch.read()) is not EOF:
                    assert isinstance(reply, health_pb2.HealthCheckResponse)
                    seen.append(_name(reply.status))
                    if reply.status == _NOT_SERVING:
                        break
                else:
                    seen.append("the stream ended")
        except grpc.aio.AioRpcError as exc:
            if not seen and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                # Polling Check could miss a short NOT_SERVING window: no verdict without Watch.
                skip(
                    "the plugin does not implement Health/Watch (UNIMPLEMENTED), through which "
                    "the suite sees HL-5's NOT_SERVING however briefly it lasts"
                )
            seen.append(f"the stream ended: {exc.code().name}")
        except TimeoutError:
            seen.append(f"nothing more within {_WATCH_GUARD_S:g} s")
        finally:
            watch.cancel()
        check(
            seen[:1] == ["SERVING"] and "NOT_SERVING" in seen,
            f'after {how}, Watch("plugin") gave {", ".join(seen) or "nothing"}; expected '
            "SERVING, then NOT_SERVING before the stream ends",
        )
