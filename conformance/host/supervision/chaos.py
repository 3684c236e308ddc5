"""Chaos: one plugin crashing over and over while the others carry traffic."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
import time

import httpx

from pluginconf.control import control_pb2
from pluginconf.runner import Profile, case, expect, fail
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import FakePlugin, describe_error, describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.units import MIB

from .._helpers import NON_BMP, new_seed, seeded

WORKERS = 2


class Traffic:
    """Concurrent HTTP /echo and ExecuteCommand to the healthy plugins, checked one by one;
    calls to the crashing plugin too, whose failures are allowed but must end."""

    def __init__(
        self, t: HostTarget, healthy: list[FakePlugin], crashing: FakePlugin, seed: int
    ) -> None:
        self.t = t
        self.healthy = healthy
        self.crashing = crashing
        self.seed = seed
        self.max_size = max(0, min(MIB, t.max_body))
        self.stop = asyncio.Event()
        self.problems: list[str] = []
        self.checked = 0
        self.bytes = 0

    async def run(self) -> None:
        await asyncio.gather(*(self.worker(n) for n in range(WORKERS)))

    async def worker(self, n: int) -> None:
        rng = random.Random(self.seed * 7919 + n)
        http = self.t.http(timeout_s=30)
        count = 0
        while not self.stop.is_set():
            count += 1
            roll = rng.random()
            if roll < 0.15:
                await self.poke_crashing(http, rng, f"w{n}-{count}")
                continue
            plugin = rng.choice(self.healthy)
            if roll < 0.6:
                # Log-uniform sizes: mostly small bodies, some up to 1 MiB, so that the
                # traffic does not starve the restarts of the machine's CPU.
                size = min(self.max_size, int(2 ** rng.uniform(0, 20.0001)))
                await self.echo(http, plugin, size, rng)
            else:
                await self.command(plugin, f"/chaos w{n} #{count} {NON_BMP}")

    async def echo(
        self, http: httpx.AsyncClient, plugin: FakePlugin, size: int, rng: random.Random
    ) -> None:
        body = rng.randbytes(size)
        what = f"POST /echo of {size} bytes to {plugin.plugin_id!r}"
        try:
            response = await http.post(plugin.url("/echo"), content=body)
        except httpx.HTTPError as exc:
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return
        coding = response.headers.get("content-encoding", "identity")
        if response.status_code != 200:
            self.problems.append(f"{what}: status {response.status_code}")
        elif coding.lower() != "identity":
            self.problems.append(f"{what}: the host added Content-Encoding {coding!r} (SE-10)")
        elif response.content != body:
            got = hashlib.sha256(response.content).hexdigest()[:16]
            sent = hashlib.sha256(body).hexdigest()[:16]
            self.problems.append(
                f"{what}: {len(response.content)} bytes came back, sha256 {got}..., expected "
                f"{sent}... (SE-10)"
            )
        else:
            self.checked += 1
            self.bytes += size

    async def command(self, plugin: FakePlugin, text: str) -> None:
        outcome = await plugin.command(text, timeout_s=30)
        if outcome.WhichOneof("result") != "response":
            shown = describe_error(outcome.error) if outcome.HasField("error") else "nothing"
            self.problems.append(f"ExecuteCommand {text!r} on {plugin.plugin_id!r}: {shown}")
        elif outcome.response.text != text:
            self.problems.append(
                f"ExecuteCommand {text!r} on {plugin.plugin_id!r} answered "
                f"{outcome.response.text!r}"
            )
        else:
            self.checked += 1

    async def poke_crashing(self, http: httpx.AsyncClient, rng: random.Random, tag: str) -> None:
        """A call to the crashing plugin: any outcome will do, as long as it comes."""
        if rng.random() < 0.5:
            with contextlib.suppress(httpx.HTTPError):
                await http.post(self.crashing.url("/echo"), content=rng.randbytes(4096))
        else:
            await self.crashing.command(f"/chaos {tag}", timeout_s=30)


def active_after_crash(status: control_pb2.PluginStatus, after: int) -> bool:
    crashed = any(tr.new_state == "crashed" for tr in status.transitions[after:])
    return crashed and status.state == "active"


async def kill_repeatedly(c: FakePlugin, rng: random.Random, kills: int) -> list[int]:
    """SIGKILL c's current process ``kills`` times at random moments, each time waiting
    (bounded) until a new process is active; the killed pids."""
    killed = []
    for n in range(kills):
        await asyncio.sleep(rng.uniform(0.1, 0.5))  # a random moment, not a synchronisation
        before = len((await c.status()).transitions)
        killed.append(c.kill())
        await c.wait_started(n + 2, timeout_s=15.0)
        await c.wait_status(
            functools.partial(active_after_crash, after=before),
            f"active again after kill {n + 1}",
            timeout_s=15.0,
        )
    return killed


@case(
    "host/chaos/kills-during-traffic",
    requirements=["SV-20", "SE-10", "SV-3"],
    profile=Profile.HOOKS,
    timeout_s=90,
)
async def kills_during_traffic(t: HostTarget) -> None:
    """
    Purpose: One plugin crashing again and again, with calls to it in progress, does not
      disturb the others, and the host keeps serving throughout.
    Procedure: Load well-behaved fakes a and b, and c whose hooks each take 50 ms
      (restart limit 100, backoff at most 100 ms). Run two workers of concurrent traffic:
      POST /echo of random bodies up to 1 MiB (log-uniform sizes) to a and b, ExecuteCommand
      to a and b, and calls to c. Meanwhile SIGKILL c's current process 3 to 5 times at
      random moments (seeded; the seed is in the evidence), each time waiting until c is
      active again. Then stop the traffic and send a last request to a and b.
    Asserts: Every response from a and b is complete and byte for byte what was sent (the
      echo) or the command's answer; a and b each kept their one process and stayed active
      without a transition; the last requests succeed; c is active again after every kill
      and at the end.
    """
    t.require(Capability.RESTARTS, "restarting the crashing plugin")
    t.require(Capability.HTTP_FRONT, "the HTTP traffic")
    seed = new_seed()
    with seeded(t, seed) as rng:
        a, b, c = await asyncio.gather(
            t.load({}, name="a"),
            t.load({}, name="b"),
            t.load(
                {"hook_delay_ms": 50},
                name="c",
                # c's restarts must outlast the kills: a high limit and a short backoff.
                restart_limit=100,
                restart_window_s=3600,
                backoff_base_s=0.05,
                backoff_max_s=0.1,
            ),
        )
        healthy = [a, b]
        baseline = {p.plugin_id: len((await p.status()).transitions) for p in healthy}
        traffic = Traffic(t, healthy, c, seed)
        started = time.monotonic()
        running = asyncio.create_task(traffic.run())
        try:
            killed = await kill_repeatedly(c, rng, rng.randint(3, 5))
        finally:
            traffic.stop.set()
            t.step("waiting for the traffic to end")
            done, _ = await asyncio.wait({running}, timeout=60.0)
            if not done:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
                fail("the traffic did not end within 60 s of being told to stop")
        running.result()
        took = time.monotonic() - started
        summary = (
            f"{traffic.checked} responses checked ({traffic.bytes} echoed bytes) in "
            f"{took:.1f}s while c's processes {killed} were killed"
        )
        expect(
            not traffic.problems,
            f"{len(traffic.problems)} calls to the healthy plugins failed or came back wrong "
            f"while another plugin crashed (SV-20, SE-10); {summary}:\n  "
            + "\n  ".join(traffic.problems[:20]),
        )
        for p in healthy:
            status = await p.status()
            later = list(status.transitions[baseline[p.plugin_id] :])
            expect(
                status.state == "active" and not later and len(p.pids()) == 1,
                f"plugin {p.plugin_id!r} was disturbed by another plugin's crashes (SV-20): "
                f"{len(p.pids())} process(es) started; {summary}\n{describe_status(status)}",
            )
        rng_last = random.Random(seed + 1)
        for p in healthy:
            await traffic.echo(t.http(), p, 64 * 1024, rng_last)
            await traffic.command(p, "/last")
        expect(
            not traffic.problems,
            "after the chaos, the host failed a request to a healthy plugin: "
            + "; ".join(traffic.problems),
        )
        await c.wait_active(timeout_s=15.0)
        expect(traffic.checked > 0, f"no traffic was checked; {summary}")
