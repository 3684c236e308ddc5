"""The fake's record: each event as a JSON line in record.file and a report to record.observer."""

from __future__ import annotations

import itertools
import json
import logging
import os
import stat
import sys
import threading
import time
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from pluginconf.control import control_pb2, control_pb2_grpc
from pluginconf.fake.scenario.model import (
    Record,
    Scenario,
)
from pluginconf.plugin import ServeConfig

log = logging.getLogger("fakeplugin")

# Each report to the suite's Observer is a blocking call with this deadline: a dead observer
# costs the fake at most this once (it stops reporting after a failure), never a hang.
REPORT_TIMEOUT_S = 5.0


def to_dict(message: Message | None) -> dict[str, Any] | None:
    """Protobuf JSON with the proto field names and every field, so ParseDict gives it back."""
    if message is None:
        return None
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class ObserverUnreachable(Exception):
    """The first report to record.observer failed; the message says why."""


class ObserverClient:
    """Reports events to the suite's Observer (pluginconf.conformance.v1.Observer), each with
    a blocking unary call, so the suite has an event before the fake acts on it."""

    def __init__(self, target: str, label: str) -> None:
        self.target = target
        self._label = label
        self._channel = grpc.insecure_channel(target)
        self._stub = control_pb2_grpc.ObserverStub(self._channel)

    def report(
        self, name: str, seq: int, pid: int, times: tuple[float, float], fields: Any
    ) -> None:
        """Raises grpc.RpcError when the observer did not take the event in time."""
        event = control_pb2.ObservedEvent(
            label=self._label,
            event=name,
            pid=pid,
            seq=seq,
            monotonic=times[0],
            wall=times[1],
            fields_json=json.dumps(fields, ensure_ascii=False),
        )
        self._stub.Report(event, timeout=REPORT_TIMEOUT_S)


class Recorder:
    """Records each event: one JSON line appended to record.file, each with a single write so
    readers see whole lines, and a report to record.observer; both carry the same seq."""

    def __init__(self, record: Record | None) -> None:
        self._fd: int | None = None
        self._observer: ObserverClient | None = None
        if record is not None and record.file is not None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(record.file, flags, 0o644)
        if record is not None and record.observer is not None:
            self._observer = ObserverClient(record.observer, record.label)
        self._seq = itertools.count(1)
        self._pid = os.getpid()
        # Threads record too (the stderr flood): seq order must be file and report order.
        self._lock = threading.Lock()

    def first(self, name: str, **fields: Any) -> None:
        """The first event: raises ObserverUnreachable when the observer cannot take it."""
        self._record(name, fields, strict=True)

    def event(self, name: str, **fields: Any) -> None:
        self._record(name, fields, strict=False)

    def _record(self, name: str, fields: dict[str, Any], strict: bool) -> None:
        if self._fd is None and self._observer is None:
            return
        with self._lock:
            seq, times = next(self._seq), (time.monotonic(), time.time())
            self._report(name, seq, times, fields, strict)
            if self._fd is None:
                return
            entry = {
                "event": name,
                "seq": seq,
                "pid": self._pid,
                "monotonic": times[0],
                "wall": times[1],
                **fields,
            }
            data = memoryview((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
            while data:
                data = data[os.write(self._fd, data) :]

    def _report(
        self, name: str, seq: int, times: tuple[float, float], fields: Any, strict: bool
    ) -> None:
        observer = self._observer
        if observer is None:
            return
        try:
            observer.report(name, seq, self._pid, times, fields)
        except grpc.RpcError as exc:
            why = _rpc_error_text(exc)
            if strict:
                raise ObserverUnreachable(f"cannot report to {observer.target!r}: {why}") from None
            # The suite is gone or stuck: going on reporting could only stall the plugin.
            self._observer = None
            log.warning(
                "record.observer: report of event %d (%s) to %r failed (%s); no further "
                "events are reported to it, the plugin carries on",
                seq,
                name,
                observer.target,
                why,
            )


def _rpc_error_text(exc: grpc.RpcError) -> str:
    if isinstance(exc, grpc.Call):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc)


def _fd_target(fd: int) -> str:
    """What descriptor ``fd`` is open on ("/dev/null", "pipe:[123]", ...), or "closed"."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "closed"


def _socket_dir_seen(path: str | None) -> dict[str, Any] | None:
    """PLUGIN_UNIX_SOCKET_DIR as the plugin finds it at its start (HS-4): the host may remove
    it as soon as the process is gone, so the suite reads it here rather than later."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError as exc:
        return {"exists": False, "error": exc.strerror or str(exc)}
    return {
        "exists": True,
        "is_dir": stat.S_ISDIR(info.st_mode),
        "mode": stat.S_IMODE(info.st_mode),
        "uid": info.st_uid,
    }


def started_fields(scenario: Scenario, config: ServeConfig) -> dict[str, Any]:
    cookie_key = config.magic_cookie.key
    env = {k: v for k, v in os.environ.items() if k.startswith("PLUGIN_") or k == cookie_key}
    return {
        "argv": sys.argv,
        "scenario": scenario.path,
        "ppid": os.getppid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "stdio": {str(fd): _fd_target(fd) for fd in (0, 1, 2)},
        "env": env,
        "socket_dir": _socket_dir_seen(os.environ.get("PLUGIN_UNIX_SOCKET_DIR")),
    }
