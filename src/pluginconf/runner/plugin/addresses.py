"""Whose address is it? Each plugin process must serve an address of its own (TR-14).

A plugin that listens on a fixed TCP address (go-plugin's Python example uses
127.0.0.1:1234) lets two of its processes bind the same port (grpcio sets SO_REUSEPORT), and
the kernel then hands each connection to either: one process's answers would be taken for
the other's. The suite therefore looks, at every tcp launch, for another process listening
on the announced address, and the preflight starts two processes at once to learn whether
the plugin shares its address at all (then the run keeps one process at a time).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import psutil

from pluginconf.protocol.handshake import HandshakeLine

# Listening addresses that take connections made to 127.0.0.1:PORT.
_CATCHES_LOOPBACK = {"127.0.0.1", "0.0.0.0", "::"}


def plain_ip(ip: str) -> str:
    """An IPv4-mapped IPv6 address (::ffff:127.0.0.1, as gRPC binds) as plain IPv4."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _family(pid: int) -> set[int]:
    """The process and its descendants: what one plugin process is, wrappers included."""
    try:
        return {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return {pid}


def describe_process(pid: int | None) -> str:
    if pid is None:
        return "a process the suite may not inspect (pid unknown: another user's)"
    try:
        command = " ".join(psutil.Process(pid).cmdline()) or "(no command line)"
    except psutil.Error:
        command = "(gone while looking)"
    return f"pid {pid} ({command})"


def tcp_port(handshake: HandshakeLine) -> int | None:
    if handshake.network != "tcp":
        return None
    port = handshake.address.rpartition(":")[2]
    return int(port) if port.isdigit() else None


def other_listeners(handshake: HandshakeLine, pid: int) -> list[str]:
    """Processes other than ``pid`` (and its descendants) that listen where a tcp handshake
    points, described with their pid and command line; [] for unix plugins."""
    port = tcp_port(handshake)
    if port is None:
        return []
    own = _family(pid)
    found: dict[int | None, str] = {}
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return []
    for conn in connections:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if plain_ip(conn.laddr.ip) not in _CATCHES_LOOPBACK or conn.pid in own:
            continue
        found.setdefault(conn.pid, describe_process(conn.pid))
    return list(found.values())


@dataclass(frozen=True)
class SharedAddress:
    """Two processes of the plugin, started at once, on one address (TR-14)."""

    address: str
    first_pid: int
    second_pid: int
    # How it showed: both announced it, or the second could not start while the first
    # held it (and started once it was gone).
    how: str

    def evidence(self) -> str:
        return (
            f"two processes of the plugin started at once, pid {self.first_pid} and pid "
            f"{self.second_pid}, {self.how} {self.address}: each process must serve an address "
            "of its own, or a host's calls to one may reach another"
        )
