"""Host faults that break one requirement each (issue 15): launch to filters.

The launch environment's values, TLS credentials, activation, plugin ids, notifications and
filters.
"""

from __future__ import annotations

import asyncio
import asyncio.unix_events
import os
from collections.abc import Callable
from typing import Any

import grpc
from host_faults.common import fault, patch, shadow

from pluginconf.host import handshake_checks, launcher, plugin_channel
from pluginconf.host.client import PluginClient
from pluginconf.host.environment import Environment
from pluginconf.host.launcher import LaunchSpec
from pluginconf.host.supervision.states import PluginState
from pluginconf.host.supervision.supervisor import Supervisor
from pluginconf.protocol.constants import (
    ENV_MAX_PORT,
    ENV_MIN_PORT,
)
from pluginconf.v1 import hooks_pb2

# -- requirement-level faults (issue 15): one rule each, caught by a case citing it ----------


def _env_value(key: str, change: Callable[[str], str]) -> None:
    """build_env with one variable's value changed after the host set it."""
    build_env = launcher.build_env

    def changed(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)
        env[key] = change(env.get(key, ""))
        return env

    patch(launcher, "build_env", changed)


@fault("cookie-value-capitalised", "sets the magic cookie to 'Pluginconf', not 'pluginconf' (HS-1)")
def _() -> None:
    _env_value("PLUGINCONF_MAGIC_COOKIE", str.capitalize)


@fault(
    "protocol-versions-spaced",
    "lists the protocol versions as ', '-joined text, '1, 2' (HS-2)",
)
def _() -> None:
    _env_value("PLUGIN_PROTOCOL_VERSIONS", lambda versions: ", ".join([*versions.split(","), "2"]))


@fault("port-range-swapped", "sets PLUGIN_MIN_PORT and PLUGIN_MAX_PORT the wrong way round (HS-3)")
def _() -> None:
    build_env = launcher.build_env

    def swapped(spec: LaunchSpec, socket_dir: str, client_cert: Any) -> dict[str, str]:
        env = build_env(spec, socket_dir, client_cert)
        env[ENV_MIN_PORT], env[ENV_MAX_PORT] = env[ENV_MAX_PORT], env[ENV_MIN_PORT]
        return env

    patch(launcher, "build_env", swapped)


@fault(
    "tcp-private-accepted",
    "accepts any private tcp address, not only loopback (is_private for is_loopback) (HS-21)",
)
def _() -> None:
    import ipaddress

    def private(address: str) -> bool:
        host = address.rpartition(":")[0].strip("[]")
        try:
            return ipaddress.ip_address(host).is_private
        except ValueError:
            return False

    patch(handshake_checks, "_is_loopback", private)


def _channel_credentials_without(*dropped: str) -> None:
    """The host's TLS channel credentials made without the arguments ``dropped``."""
    real = grpc.ssl_channel_credentials

    def credentials(**kwargs: Any) -> grpc.ChannelCredentials:
        return real(**{k: v for k, v in kwargs.items() if k not in dropped})

    patch(plugin_channel, "grpc", shadow(grpc, ssl_channel_credentials=credentials))


@fault(
    "mtls-no-client-cert",
    "verifies the plugin's certificate but presents none of its own (one-way TLS) (TLS-8)",
)
def _() -> None:
    _channel_credentials_without("private_key", "certificate_chain")


@fault(
    "mtls-system-roots",
    "trusts the system's roots, not the certificate of the handshake's sixth field (TLS-9)",
)
def _() -> None:
    _channel_credentials_without("root_certificates")


@fault(
    "active-before-on-activate",
    "takes hook calls once Implemented is known, while OnActivate still runs (LC-2)",
)
def _() -> None:
    activate, call = Supervisor._activate, Supervisor.call

    async def early(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        self._mutant_early = client  # type: ignore[attr-defined]
        try:
            await activate(self, client, broker_id)
        finally:
            self._mutant_early = None  # type: ignore[attr-defined]

    async def calling(
        self: Supervisor, hook: str, request: Any, timeout_s: float | None = None
    ) -> Any:
        starting: PluginClient | None = getattr(self, "_mutant_early", None)
        if self.state is PluginState.STARTING and starting is not None:
            return await starting.call(hook, request, timeout_s=timeout_s)
        return await call(self, hook, request, timeout_s)

    patch(Supervisor, "_activate", early)
    patch(Supervisor, "call", calling)


@fault(
    "plugin-id-from-executable",
    "sends OnActivate the executable's name as plugin_id, not the plugin's id (LC-6)",
)
def _() -> None:
    activate = Supervisor._activate

    async def named(self: Supervisor, client: PluginClient, broker_id: int) -> None:
        real_id = self.plugin_id
        self.plugin_id = os.path.basename(self.spec.argv[0])
        try:
            await activate(self, client, broker_id)
        finally:
            self.plugin_id = real_id

    patch(Supervisor, "_activate", named)


@fault(
    "notified-once-per-post-hook",
    "lists a plugin once per post hook it implements, so notifies it twice (NT-1)",
)
def _() -> None:
    serving = Environment._serving

    def per_hook(self: Environment, hook: str) -> list[Supervisor]:
        found = serving(self, hook)
        if hook == "MessageHasBeenPosted":
            found += [s for s in serving(self, "MessageWillBePosted") if s in found]
        return found

    patch(Environment, "_serving", per_hook)


@fault(
    "notification-retried",
    "retries a failed notification once, in the background, after reporting it (NT-4)",
)
def _() -> None:
    notify = Environment.notify
    retries: set[asyncio.Task[Any]] = set()

    async def retrying(self: Environment, post: hooks_pb2.Post) -> dict[str, Any]:
        outcomes = await notify(self, post)
        request = hooks_pb2.MessageHasBeenPostedRequest(post=post)
        for plugin_id, failure in outcomes.items():
            if failure is not None:
                retry = self.plugins[plugin_id].call("MessageHasBeenPosted", request)
                task = asyncio.ensure_future(retry)
                retries.add(task)  # referenced until done
                task.add_done_callback(lambda t: (retries.discard(t), t.exception()))
        return outcomes

    patch(Environment, "notify", retrying)


@fault(
    "filter-sees-original-post",
    "asks each filter about the post as sent, not as the previous filter left it (FL-1)",
)
def _() -> None:
    chain = Environment.message_will_be_posted
    step = Environment._filter_step

    async def from_original(self: Environment, post: hooks_pb2.Post) -> Any:
        self._mutant_original = post  # type: ignore[attr-defined]
        return await chain(self, post)

    async def each_on_original(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        changed = result.post
        result.post = self._mutant_original  # type: ignore[attr-defined]
        ends = await step(self, supervisor, result)
        if result.post is self._mutant_original:  # type: ignore[attr-defined]
            result.post = changed  # the step kept it: the chain's post stays
        return ends

    patch(Environment, "message_will_be_posted", from_original)
    patch(Environment, "_filter_step", each_on_original)


@fault(
    "modify-merged",
    "merges a MODIFY's post into the post it had, so fields the filter removed stay (FL-3)",
)
def _() -> None:
    step = Environment._filter_step

    async def merging(self: Environment, supervisor: Supervisor, result: Any) -> bool:
        before = hooks_pb2.Post()
        before.CopyFrom(result.post)
        ends = await step(self, supervisor, result)
        if result.steps and result.steps[-1].outcome == "modify":
            before.MergeFrom(result.post)
            result.post = before
        return ends

    patch(Environment, "_filter_step", merging)
