"""HostAPI's key-value store: semantics, compare-and-set, sizes, per plugin, across restarts."""

from __future__ import annotations

import hashlib
from typing import Any

from pluginconf.runner import Profile, case, check, expect
from pluginconf.runner.host.capabilities import Capability
from pluginconf.runner.host.fake_plugin import describe_status
from pluginconf.runner.host.target import HostTarget
from pluginconf.units import MIB

from ._helpers import COMMANDS, MAX_KEY, app_error, call_ok, require_host_api, run_ops, shown

CAS_ROUNDS = 8
CAS_RACERS = 16


@case("host/hostapi/kv-semantics", requirements=["HA-7"], profile=Profile.HOOKS)
async def kv_semantics(t: HostTarget) -> None:
    """
    Purpose: KVGet, KVSet and KVDelete, with an empty value distinct from an absent key.
    Procedure: Through a fake: read an absent key; store an empty value and read it; replace
      it twice; delete it, twice; store every byte value and read them back; delete a key
      whose value is empty.
    Asserts: Absent: found false, empty value. Stored: found true with the bytes, the last
      ones set. Delete: deleted true exactly when the key existed, the empty value included.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    ops: list[dict[str, Any]] = [
        {"op": "kv_get", "key": "absent"},
        {"op": "kv_set", "key": "e", "value": ""},
        {"op": "kv_get", "key": "e"},
        {"op": "kv_set", "key": "r", "value": "one"},
        {"op": "kv_set", "key": "r", "value": "two"},
        {"op": "kv_get", "key": "r"},
        {"op": "kv_delete", "key": "r"},
        {"op": "kv_delete", "key": "r"},
        {"op": "kv_get", "key": "r"},
        {"op": "kv_set", "key": "b", "value_bytes": 512},
        {"op": "kv_get", "key": "b"},
        {"op": "kv_delete", "key": "e"},
        {"op": "kv_get", "key": "e"},
        {"op": "kv_delete", "key": "never-set"},
    ]
    r = await run_ops(plugin, ops)
    for result in r:
        call_ok(result, result["op"], "HA-7")
    pattern = hashlib.sha256(bytes(i % 256 for i in range(512))).hexdigest()
    expected: list[tuple[int, dict[str, Any], str]] = [
        (0, {"found": False, "value_len": 0}, "an absent key"),
        (2, {"found": True, "value_len": 0}, "a key stored with an empty value"),
        (5, {"found": True, "value": "two"}, "a key set twice (the last value)"),
        (6, {"deleted": True}, "deleting a key that exists"),
        (7, {"deleted": False}, "deleting it again"),
        (8, {"found": False, "value_len": 0}, "a deleted key"),
        (10, {"found": True, "value_len": 512, "value_sha256": pattern}, "every byte value"),
        (11, {"deleted": True}, "deleting a key whose value is empty"),
        (12, {"found": False}, "the deleted empty-valued key"),
        (13, {"deleted": False}, "deleting a key never set"),
    ]
    for index, want, what in expected:
        got = r[index]
        wrong = {k: got.get(k) for k, v in want.items() if got.get(k) != v}
        check(
            not wrong,
            f"{ops[index]['op']} for {what}: expected {want}, got {wrong} (HA-7)\n{shown(got)}",
        )


@case("host/hostapi/compare-and-set", requirements=["HA-8"], profile=Profile.HOOKS)
async def compare_and_set(t: HostTarget) -> None:
    """
    Purpose: KVCompareAndSet's two conditions: absent (old_value not present), and equal to
      old_value byte for byte (present, even empty).
    Procedure: Through a fake, on absent, empty-valued and valued keys, with old_value absent,
      present and empty, present and equal, present and different.
    Asserts: swapped exactly when the condition holds, and the key holds the new value then.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    cases: list[tuple[dict[str, Any], bool, str]] = [
        ({"key": "a", "new": "1"}, True, "old absent, key absent"),
        ({"key": "a", "new": "2"}, False, "old absent, key present"),
        ({"key": "n", "old": "", "new": "x"}, False, "old present and empty, key absent"),
        ({"key": "a", "old": "", "new": "x"}, False, "old empty, key holds '1'"),
        ({"key": "a", "old": "9", "new": "x"}, False, "old '9', key holds '1'"),
        ({"key": "a", "old": "1", "new": ""}, True, "old '1', key holds '1'"),
        ({"key": "a", "new": "y"}, False, "old absent, key holds an empty value"),
        ({"key": "a", "old": "", "new": "z"}, True, "old empty, key holds an empty value"),
    ]
    ops = [{"op": "kv_cas", **spec} for spec, _, _ in cases]
    ops += [{"op": "kv_get", "key": "a"}, {"op": "kv_get", "key": "n"}]
    r = await run_ops(plugin, ops)
    for result in r:
        call_ok(result, result["op"], "HA-8")
    for (_, want, what), got in zip(cases, r, strict=False):
        check(
            got.get("swapped") is want,
            f"KVCompareAndSet with {what}: swapped {got.get('swapped')}, expected {want} "
            f"(HA-8)\n{shown(got)}",
        )
    final, untouched = r[-2], r[-1]
    check(
        final.get("value") == "z",
        f"after the swaps, key 'a' holds {final.get('value')!r}, expected 'z' (HA-8)",
    )
    check(
        not untouched.get("found"),
        f"a compare-and-set that did not swap created key 'n': {shown(untouched)} (HA-8)",
    )


@case("host/hostapi/compare-and-set-atomic", requirements=["HA-8"], profile=Profile.HOOKS)
async def compare_and_set_atomic(t: HostTarget) -> None:
    """
    Purpose: KVCompareAndSet is atomic: of concurrent calls expecting the same value,
      exactly one swaps.
    Procedure: Eight rounds, through a fake: set a key, then 16 concurrent compare-and-sets
      expecting that value, each with its own new value; read the key.
    Asserts: In every round exactly one swaps, and the key holds the winner's new value.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    for round_ in range(CAS_ROUNDS):
        key, start = f"race-{round_}", f"start-{round_}"
        ops: list[dict[str, Any]] = [
            {"op": "kv_set", "key": key, "value": start},
            {"op": "kv_cas", "key": key, "old": start, "new": "won", "concurrent": CAS_RACERS},
            {"op": "kv_get", "key": key},
        ]
        r = await run_ops(plugin, ops)
        for result in r:
            call_ok(result, result["op"], "HA-8")
        race, final = r[1], r[2]
        winners = race.get("winners", [])
        expect(
            len(winners) == 1,
            f"round {round_ + 1}: {len(winners)} of {CAS_RACERS} concurrent compare-and-sets "
            f"expecting the same value swapped; exactly one must (HA-8)\n{shown(race)}",
        )
        check(
            final.get("value") == f"won#{winners[0]}",
            f"round {round_ + 1}: the key holds {final.get('value')!r}, but the one that "
            f"swapped set 'won#{winners[0]}' (HA-8)",
        )


@case("host/hostapi/sizes", requirements=["HA-9"], profile=Profile.HOOKS)
async def sizes(t: HostTarget) -> None:
    """
    Purpose: Keys up to 256 bytes and values up to 1 MiB are accepted; an empty key is an
      invalid_argument AppError.
    Procedure: Through a fake: store and read a 256-byte ASCII key, a 256-byte key of 4-byte
      characters, a 1 MiB value; then KVGet, KVSet, KVDelete and KVCompareAndSet an empty key.
    Asserts: The boundary values round-trip unchanged; each empty-key call answers an AppError
      of code invalid_argument.
    """
    require_host_api(t)
    plugin = await t.load(COMMANDS)
    wide = "🧩" * (MAX_KEY // 4)
    ops: list[dict[str, Any]] = [
        {"op": "kv_set", "key": "k" * MAX_KEY, "value": "ascii"},
        {"op": "kv_get", "key": "k" * MAX_KEY},
        {"op": "kv_set", "key": wide, "value": "wide"},
        {"op": "kv_get", "key": wide},
        {"op": "kv_set", "key": "big", "value_bytes": MIB},
        {"op": "kv_get", "key": "big"},
    ]
    r = await run_ops(plugin, ops)
    digest = hashlib.sha256(bytes(i % 256 for i in range(MIB))).hexdigest()
    for index, want, what in (
        (1, "ascii", "a 256-byte ASCII key"),
        (3, "wide", "a 256-byte key of 4-byte characters"),
    ):
        stored, got = r[index - 1], r[index]
        check(
            stored.get("status") == "OK" and not app_error(stored) and got.get("value") == want,
            f"{what} was not stored and read back: set {shown(stored)}, get {shown(got)} (HA-9)",
        )
    stored, got = r[4], r[5]
    check(
        stored.get("status") == "OK"
        and not app_error(stored)
        and got.get("value_sha256") == digest,
        f"a 1 MiB value was not stored and read back unchanged: set {shown(stored)}, "
        f"get {shown(got)} (HA-9)",
    )
    empty = [
        {"op": "kv_get", "key": ""},
        {"op": "kv_set", "key": "", "value": "v"},
        {"op": "kv_delete", "key": ""},
        {"op": "kv_cas", "key": "", "new": "v"},
    ]
    for result in await run_ops(plugin, empty):
        error = app_error(result)
        check(
            result.get("status") == "OK" and error and error.get("code") == "invalid_argument",
            f"{result['op']} with an empty key: expected an OK response with an AppError of "
            f"code invalid_argument, got {shown(result)} (HA-9)",
        )


@case("host/hostapi/per-plugin", requirements=["HA-5"], profile=Profile.HOOKS)
async def per_plugin(t: HostTarget) -> None:
    """
    Purpose: Each plugin's keys are its own: the same key used by two plugins holds two values.
    Procedure: Load two fakes; each stores its own value under the same key, then each reads
      it back and deletes a key only the other stored.
    Asserts: Each reads its own value; the delete finds nothing.
    """
    require_host_api(t)
    first = await t.load(COMMANDS, name="a")
    second = await t.load(COMMANDS, name="b")
    await run_ops(first, [{"op": "kv_set", "key": "shared", "value": "from-a"}])
    await run_ops(second, [{"op": "kv_set", "key": "shared", "value": "from-b"}])
    await run_ops(second, [{"op": "kv_set", "key": "only-b", "value": "b"}])
    for plugin, own in ((first, "from-a"), (second, "from-b")):
        (got,) = await run_ops(plugin, [{"op": "kv_get", "key": "shared"}])
        call_ok(got, "KVGet", "HA-5")
        check(
            got.get("value") == own,
            f"plugin {plugin.plugin_id!r} read {got.get('value')!r} under the key both "
            f"plugins set; it stored {own!r} (HA-5)",
        )
    (gone,) = await run_ops(first, [{"op": "kv_delete", "key": "only-b"}])
    check(
        gone.get("deleted") is False,
        f"plugin {first.plugin_id!r} deleted a key only {second.plugin_id!r} had set (HA-5)",
    )


@case("host/hostapi/survives-restart", requirements=["HA-6"], profile=Profile.HOOKS)
async def survives_restart(t: HostTarget) -> None:
    """
    Purpose: A plugin's data belongs to its id and outlives its process.
    Procedure: Through a fake, store a key; kill the process; once the host has restarted it,
      read the key from the new process.
    Asserts: The new process reads the value the old one stored.
    """
    require_host_api(t)
    t.require(Capability.RESTARTS, "a restart of the process")
    plugin = await t.load(COMMANDS, backoff_base_s=0.05, backoff_max_s=0.2)
    (stored,) = await run_ops(plugin, [{"op": "kv_set", "key": "keep", "value": "me"}])
    call_ok(stored, "KVSet", "HA-6")
    old = plugin.pids()[-1]
    plugin.kill(old)
    await plugin.wait_started(2)
    status = await plugin.wait_active()
    expect(status.pid != old, f"the host did not restart the plugin\n{describe_status(status)}")
    (got,) = await run_ops(plugin, [{"op": "kv_get", "key": "keep"}])
    call_ok(got, "KVGet after the restart", "HA-6")
    check(
        got.get("found") and got.get("value") == "me",
        f"after a restart the key stored by the previous process reads {shown(got)}; "
        "expected 'me' (HA-6)",
    )
