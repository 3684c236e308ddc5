"""The scenario as the fake reads it: typed, frozen values, and the keys' constants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import get_args

from pluginconf.fake.scenario.hostapi import (
    BrokerBehaviour,
    HostAPICalls,
)
from pluginconf.fake.scenario.spec import (
    FilterAction,
    FloodWhen,
    HealthStatus,
    Network,
    ResponseType,
    SixthField,
    StdioMode,
    TLSServe,
)
from pluginconf.project import doc_url

EXIT_SCENARIO_ERROR = 2

USAGE = (
    "usage: fakeplugin SCENARIO.json          run as the plugin the scenario describes\n"
    "       fakeplugin --check SCENARIO.json  only validate the scenario\n"
    "(fakeplugin is the repository's fake_interpreters/fakeplugin, or python -m pluginconf.fake)\n"
    f"The scenario format: {doc_url('fake_interpreters/README.md')}"
)

# The values a key takes, from the scenario's types (scenario.spec).
FILTER_ACTIONS: tuple[FilterAction, ...] = get_args(FilterAction)
RESPONSE_TYPES: tuple[ResponseType, ...] = get_args(ResponseType)
HEALTH_STATUSES: tuple[HealthStatus, ...] = get_args(HealthStatus)
FLOOD_WHEN: tuple[FloodWhen, ...] = get_args(FloodWhen)
NETWORKS: tuple[Network, ...] = get_args(Network)
DEFAULT_REJECTION_REASON = "rejected by fakeplugin"

DEFAULT_COOKIE = ("PLUGINCONF_MAGIC_COOKIE", "pluginconf")
DEFAULT_CRASH_EXIT_CODE = 3
DEFAULT_GRANDCHILD_SECONDS = 300.0
MAX_NOISE_LINES = 100_000


class ScenarioError(Exception):
    """The scenario cannot be used; the message names the key and what was expected."""


@dataclass(frozen=True)
class HandshakeFault:
    """Instead of the real handshake: print ``line``, exit, or close stdout."""

    line: str | None = None
    exit_before: int | None = None
    stderr: str | None = None
    close_stdout: bool = False
    # With a five-field ``line``: when the host sets PLUGIN_CLIENT_CERT, append the fake's own
    # certificate as field 6, as a plugin under AutoMTLS would.
    with_certificate: bool = False


@dataclass(frozen=True)
class Crash:
    on: frozenset[str] = frozenset()
    after_hook_calls: int | None = None
    during_http_after_bytes: int | None = None
    exit_code: int = DEFAULT_CRASH_EXIT_CODE


@dataclass(frozen=True)
class Hang:
    hooks: frozenset[str] = frozenset()
    health: bool = False
    # With health: answer this many Check calls first, or answer for this long after the
    # handshake, then stop answering. Neither: never answer.
    health_after_checks: int | None = None
    health_after_s: float | None = None


@dataclass(frozen=True)
class Health:
    status: str = "SERVING"  # or "NOT_SERVING"
    flap_every_s: float | None = None
    # NOT_SERVING for this long after the handshake, then SERVING.
    serving_after_s: float | None = None


@dataclass(frozen=True)
class AppErrorSpec:
    code: str
    message: str


@dataclass(frozen=True)
class Filter:
    """What MessageWillBePosted answers."""

    action: str = "keep"  # FILTER_ACTIONS
    append: str = ""  # modify: appended to post.message
    reason: str = DEFAULT_REJECTION_REASON  # reject: rejection_reason
    # modify: keys removed from post.props (a replacement post, not a merge: FL-3)
    drop_props: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommandResponse:
    """What ExecuteCommand answers; text None: the command received."""

    text: str | None = None
    response_type: str = "ephemeral"
    # The whole ExecuteCommandResponse is exactly this many bytes (text padded with "x").
    message_bytes: int | None = None


@dataclass(frozen=True)
class Flood:
    bytes: int
    when: str = "after"  # or "before" (the handshake)
    line_bytes: int = 1024  # each line, its newline included


@dataclass(frozen=True)
class Grandchild:
    seconds: float = DEFAULT_GRANDCHILD_SECONDS


@dataclass(frozen=True)
class Record:
    file: str | None = None  # absolute
    observer: str | None = None  # a gRPC target serving pluginconf.conformance.v1.Observer
    label: str = ""


# -- what real plugins do: field 6, Implemented, GRPCStdio, later errors -------------------

TLS_SERVE: tuple[TLSServe, ...] = get_args(TLSServe)
SIXTH_FIELDS: tuple[SixthField, ...] = get_args(SixthField)
STDIO_MODES: tuple[StdioMode, ...] = get_args(StdioMode)
# gRPC status code names a hook_status may give (every one but OK).
STATUS_NAMES = (
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


@dataclass(frozen=True)
class TLSSpec:
    """How the fake serves and announces AutoMTLS (fake_interpreters/README.md, ``tls``)."""

    serve: str = "auto"  # TLS_SERVE
    sixth_field: str = "auto"  # SIXTH_FIELDS
    certificate_padding: int | None = None  # '=' its DER's base64 would end with: 0, 1, 2


@dataclass(frozen=True)
class FilterRaw:
    """MessageWillBePosted answers this action number, with or without the post received."""

    action: int
    post: bool


@dataclass(frozen=True)
class ConfigurationErrorFrom:
    """OnConfigurationChange answers this AppError from its ``call``-th call of the process."""

    call: int
    error: AppErrorSpec


@dataclass(frozen=True)
class Scenario:
    path: str
    comment: str = ""
    never_handshake: bool = False
    handshake: HandshakeFault | None = None
    noise_before_handshake: tuple[str, ...] = ()
    slow_start_s: float = 0.0
    crash: Crash | None = None
    hang: Hang = field(default_factory=Hang)
    health: Health = field(default_factory=Health)
    # Hook name -> the AppError it answers (activation_error is hook_errors["OnActivate"]).
    hook_errors: Mapping[str, AppErrorSpec] = field(default_factory=dict)
    filter: Filter = field(default_factory=Filter)
    command_response: CommandResponse = field(default_factory=CommandResponse)
    hooks: frozenset[str] | None = None  # None: every hook
    ignore_shutdown: bool = False
    spawn_grandchild: Grandchild | None = None
    flood_stderr: Flood | None = None
    flood_stdout: Flood | None = None  # after the handshake, to the stdout pipe the host reads
    record: Record | None = None
    hook_delay_ms: float = 0.0
    network: str = "unix"
    protocol_versions: tuple[int, ...] = (1,)
    magic_cookie: tuple[str, str] = DEFAULT_COOKIE
    # -- HostAPI calls and broker behaviours (scenario/hostapi.py) --
    host_api: HostAPICalls | None = None
    broker: BrokerBehaviour = field(default_factory=BrokerBehaviour)
    # -- answers no correct plugin gives (host side of FL-3, FL-6, LC-5) --
    filter_raw: FilterRaw | None = None
    configuration_error_from_call: ConfigurationErrorFrom | None = None
    tls: TLSSpec = field(default_factory=TLSSpec)
    implemented_extra: tuple[str, ...] = ()
    # Hook (or Implemented) -> the gRPC status code name its calls fail with.
    hook_status: Mapping[str, str] = field(default_factory=dict)
    stdio: str = "served"  # STDIO_MODES
    configuration_error_after_activation: AppErrorSpec | None = None
    max_receive_bytes: int | None = None

    @property
    def serves(self) -> bool:
        """Whether the plugin gets as far as a real handshake and a gRPC server."""
        return not self.never_handshake and self.handshake is None

    def implements(self, hook: str) -> bool:
        return self.hooks is None or hook in self.hooks

    @property
    def activation_error(self) -> AppErrorSpec | None:
        return self.hook_errors.get("OnActivate")
