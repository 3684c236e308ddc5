"""The branches of stopping that the first cases left out: SIGTERM "as on Shutdown" for
children and for calls in progress, and a socket directory of the plugin's own after
Shutdown (an empty PLUGIN_UNIX_SOCKET_DIR counts as none, as in go-plugin)."""

from __future__ import annotations

import os
import signal
import stat

import psutil

from pluginconf.protocol.constants import ENV_UNIX_SOCKET_DIR
from pluginconf.runner import Profile, case, check, expect, skip
from pluginconf.runner.plugin.http import ServeHTTPCall
from pluginconf.runner.plugin.target import PluginTarget

from .._helpers import EXIT_GUARD_S, left_running


@case(
    "plugin/controller/sigterm-no-orphans", requirements=["CT-5", "CT-9"], profile=Profile.TRANSPORT
)
async def sigterm_no_orphans(t: PluginTarget) -> None:
    """
    Purpose: SIGTERM ends the plugin's own processes too, as Shutdown does.
    Procedure: Start the plugin, note its descendants, send SIGTERM and wait (10 s at most)
      for it to exit.
    Asserts: No process it started, and no other member of its process group, is still
      running (CT-9, which CT-5 extends to SIGTERM).
    """
    fresh = await t.launch(connect=False)
    descendants = psutil.Process(fresh.pid).children(recursive=True)
    fresh.signal(signal.SIGTERM)
    if not await fresh.wait_exit(EXIT_GUARD_S):
        skip(
            f"the plugin did not exit within {EXIT_GUARD_S:g} s of SIGTERM, so what it leaves "
            "behind cannot be seen (plugin/controller/sigterm reports the exit)"
        )
    left = left_running(fresh.process_group(), descendants)
    expect(
        not left,
        f"processes left running after the plugin exited on SIGTERM: {left}",
        requirement="CT-9",
    )


@case(
    "plugin/transport/own-socket-dir-shutdown",
    requirements=["TR-3", "TR-12", "TR-13"],
    profile=Profile.TRANSPORT,
)
async def own_socket_dir_shutdown(t: PluginTarget) -> None:
    """
    Purpose: An empty PLUGIN_UNIX_SOCKET_DIR is no directory (go-plugin's os.CreateTemp then
      uses the temporary directory): the plugin makes a private one, and removes it after
      Shutdown as after SIGTERM.
    Procedure: Start the plugin with PLUGIN_UNIX_SOCKET_DIR set to the empty string, TMPDIR
      a new directory; look at where its socket is; call Shutdown and wait (10 s at most)
      for it to exit.
    Asserts: The socket is inside a new directory of mode 0700 under TMPDIR (TR-12); once
      the plugin has exited, its socket (TR-3) and that directory (TR-13) are gone.
    """
    if not t.options.target.sets_unix_socket_dir:
        skip(f"the {t.options.target.name} target's host never sets PLUGIN_UNIX_SOCKET_DIR")
    shared = await t.shared(calls=False)
    assert shared.launched.handshake is not None
    if shared.launched.handshake.network != "unix":
        skip("the plugin listens on tcp")
    fresh = await t.launch(env={ENV_UNIX_SOCKET_DIR: ""})
    address = fresh.handshake.address
    parent = os.path.dirname(address)
    own = (
        os.path.commonpath([parent, fresh.tmpdir]) == fresh.tmpdir
        and parent != fresh.tmpdir
        and os.path.isdir(parent)
    )
    if not own:
        check(
            False,
            f"with PLUGIN_UNIX_SOCKET_DIR empty, the socket {address} is not in a directory of "
            f"its own under TMPDIR={fresh.tmpdir}",
            requirement="TR-12",
        )
    else:
        mode = stat.S_IMODE(os.stat(parent).st_mode)
        check(
            mode == 0o700,
            f"the socket's directory {parent} has mode {mode:04o}; expected 0700",
            requirement="TR-12",
        )
    await fresh.request_shutdown()
    if not await fresh.wait_exit(EXIT_GUARD_S):
        skip("the plugin did not exit after Shutdown (plugin/controller/shutdown reports it)")
    check(
        not os.path.lexists(address),
        f"the socket {address} is still there after the plugin exited on Shutdown",
        requirement="TR-3",
    )
    if own:
        check(
            not os.path.lexists(parent),
            f"the directory {parent} the plugin made is still there after it exited on Shutdown",
            requirement="TR-13",
        )


@case("plugin/sdk/controller/sigterm-grace", requirements=["CT-2", "CT-5"], profile=Profile.SDK)
async def sigterm_grace(t: PluginTarget) -> None:
    """
    Purpose: SIGTERM, like Shutdown, lets a call in progress finish before the plugin exits.
    Procedure: On a new process start GET /flush?n=2&ms=300 and, once its first chunk has
      arrived, send SIGTERM; wait (10 s at most) for the exchange and then the exit.
    Asserts: The exchange completes with both chunks and end, and the process exits (CT-2's
      grace on SIGTERM, as CT-5 asks; a signal has no answer to order a new call after).
    """
    fresh = await t.launch()
    call = ServeHTTPCall(fresh.hooks)
    try:
        await call.send_init("GET", "/flush", "n=2&ms=300")
        await call.send_end()
        await call.half_close()
        expect(await call.wait_for("body", 10), f"no first chunk: {call.response.describe()}")
        fresh.signal(signal.SIGTERM)
        response = await call.finish(10)
    finally:
        await call.close()
    check(
        bytes(response.body) == b"chunk 0\nchunk 1\n" and response.ended,
        f"the call in progress at SIGTERM did not complete: {response.describe()}, body "
        f"{bytes(response.body)!r}",
        requirement="CT-5",
    )
    check(
        await fresh.wait_exit(EXIT_GUARD_S),
        f"the plugin was still running {EXIT_GUARD_S:g} s after SIGTERM",
        requirement="CT-5",
    )
