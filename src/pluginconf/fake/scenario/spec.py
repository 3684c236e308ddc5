"""The scenario file as types: a TypedDict for each JSON object, a Literal for each closed set.

``ScenarioSpec`` is what a host case gives ``HostTarget.load``, so that mypy checks every key
and value a case writes; the fake still validates the file when it reads it (scenario.load),
which also checks what types cannot say (ranges, keys that exclude or need each other). Hook
names are the canonical ones only: the spellings the loader also takes (``activate``) are for
hand-written files. fake_interpreters/README.md documents every key; tests/fake keeps these
keys equal to the loader's. Standard library only, as the rest of the scenario package.
"""

from __future__ import annotations

from typing import Literal, NotRequired, Required, TypedDict, final

from pluginconf.protocol.hooks import HookName, HookWithAppError

# -- closed sets of values (the loader's tuples are read from these) --------------------------

HookOrImplemented = HookName | Literal["Implemented"]
# One hook name or a list of them (``crash.on``, ``hang.hook``).
Hooks = HookOrImplemented | list[HookOrImplemented]
HealthStatus = Literal["SERVING", "NOT_SERVING"]
FilterAction = Literal["keep", "modify", "reject"]
ResponseType = Literal["ephemeral", "in_channel"]
FloodWhen = Literal["after", "before"]  # the handshake
Network = Literal["unix", "tcp"]
TLSServe = Literal["auto", "plain", "tls1.1"]
SixthField = Literal["auto", "absent", "empty", "certificate", "not-a-certificate"]
StdioMode = Literal["served", "absent", "ends"]
# Hooks during which the fake may call HostAPI, before it answers.
HostAPIHook = Literal["OnActivate", "OnDeactivate", "OnConfigurationChange", "ExecuteCommand"]
HostAPIOpName = Literal["kv_get", "kv_set", "kv_delete", "kv_cas", "log", "get_configuration"]
LogLevel = Literal["unspecified", "debug", "info", "warn", "error"]
# How many '=' the certificate's base64 would end with (the handshake leaves them off).
CertificatePadding = Literal[0, 1, 2]

# -- handshake: exactly one of line, exit_before, close_stdout --------------------------------
# Final, so that a key tells them apart: ``"line" in handshake`` is a HandshakeLine.


@final
class HandshakeLine(TypedDict):
    line: str
    # With a five-field line: append the fake's certificate when PLUGIN_CLIENT_CERT is set.
    with_certificate: NotRequired[bool]


@final
class HandshakeExitBefore(TypedDict):
    exit_before: int
    stderr: NotRequired[str]


@final
class HandshakeCloseStdout(TypedDict):
    close_stdout: Literal[True]


HandshakeSection = HandshakeLine | HandshakeExitBefore | HandshakeCloseStdout

# -- faults of a serving plugin ---------------------------------------------------------------


class CrashSection(TypedDict, total=False):
    """At least one trigger: ``on``, ``after_hook_calls`` or ``during_http_after_bytes``."""

    on: Hooks
    after_hook_calls: int
    during_http_after_bytes: int
    exit_code: int


class HangAfterChecks(TypedDict):
    after_checks: int


class HangAfterSeconds(TypedDict):
    after_s: float


class HangSection(TypedDict, total=False):
    """At least one of ``hook`` and ``health``."""

    hook: Hooks
    health: bool | HangAfterChecks | HangAfterSeconds


class HealthFlapping(TypedDict):
    flap_every_s: float


class HealthServingAfter(TypedDict):
    serving_after_s: float


HealthSection = HealthStatus | HealthFlapping | HealthServingAfter


class AppErrorSection(TypedDict, total=False):
    code: Required[str]
    message: str


class FilterSection(TypedDict, total=False):
    action: FilterAction
    append: str  # modify only
    reason: str  # reject only
    drop_props: list[str]  # modify only


class CommandResponseSection(TypedDict, total=False):
    text: str
    response_type: ResponseType
    message_bytes: int  # instead of text


class GrandchildSection(TypedDict, total=False):
    seconds: float


class FloodStderrSection(TypedDict, total=False):
    bytes: Required[int]
    when: FloodWhen


class FloodStdoutSection(TypedDict, total=False):
    bytes: Required[int]
    line_bytes: int


class RecordSection(TypedDict, total=False):
    """``file``, ``observer`` or both; ``label`` only with ``observer``."""

    file: str
    observer: str
    label: str


# -- HostAPI calls and the broker -------------------------------------------------------------


class KVGetOp(TypedDict, total=False):
    op: Required[Literal["kv_get"]]
    key: str


class KVSetOp(TypedDict, total=False):
    """``value`` or ``value_bytes``."""

    op: Required[Literal["kv_set"]]
    key: str
    value: str
    value_bytes: int


class KVDeleteOp(TypedDict, total=False):
    op: Required[Literal["kv_delete"]]
    key: str


class KVCasOp(TypedDict, total=False):
    op: Required[Literal["kv_cas"]]
    key: str
    old: str | None  # None (or left out): old_value not present
    old_bytes: int
    new: str
    new_bytes: int
    concurrent: int


class LogOp(TypedDict, total=False):
    op: Required[Literal["log"]]
    level: LogLevel
    message: str
    fields: dict[str, str]


class GetConfigurationOp(TypedDict):
    op: Literal["get_configuration"]


HostAPIOp = KVGetOp | KVSetOp | KVDeleteOp | KVCasOp | LogOp | GetConfigurationOp


class HostAPISection(TypedDict, total=False):
    OnActivate: list[HostAPIOp]
    OnDeactivate: list[HostAPIOp]
    OnConfigurationChange: list[HostAPIOp]
    ExecuteCommand: list[HostAPIOp]
    commands: bool  # ExecuteCommand runs "hostapi [OPS]" commands


class ConnInfoSection(TypedDict, total=False):
    service_id: Required[int]
    network: str
    address: str
    knock: bool


class BrokerSection(TypedDict, total=False):
    send: list[ConnInfoSection]
    probe: bool


# -- what real plugins do, and answers no correct plugin gives --------------------------------


class TLSSection(TypedDict, total=False):
    serve: TLSServe
    sixth_field: SixthField
    certificate_padding: CertificatePadding


class FilterRawSection(TypedDict, total=False):
    action: Required[int]
    post: bool


class ConfigurationErrorFromCallSection(TypedDict, total=False):
    call: Required[int]
    code: Required[str]
    message: str


# -- the file ---------------------------------------------------------------------------------


class ScenarioSpec(TypedDict, total=False):
    """One scenario file; ``{}`` is a minimal correct plugin."""

    comment: str
    never_handshake: bool
    handshake: HandshakeSection
    noise_before_handshake: int | list[str]  # a number of lines, or the lines
    slow_start: float  # seconds
    crash: CrashSection
    hang: HangSection
    health: HealthSection
    activation_error: AppErrorSection  # hook_errors.OnActivate
    hook_errors: dict[HookWithAppError, AppErrorSection]
    filter: FilterSection
    command_response: CommandResponseSection
    hooks: list[HookName]
    ignore_shutdown: bool
    spawn_grandchild: bool | GrandchildSection
    flood_stderr: int | FloodStderrSection
    flood_stdout: FloodStdoutSection
    record: RecordSection  # HostTarget.load sets it
    hook_delay_ms: float
    network: Network
    protocol_versions: list[int]
    magic_cookie: str  # KEY=VALUE
    host_api: HostAPISection
    broker: BrokerSection
    filter_raw: FilterRawSection
    configuration_error_from_call: ConfigurationErrorFromCallSection
    tls: TLSSection
    implemented_extra: list[str]
    hook_status: dict[HookOrImplemented, str]  # a gRPC status code name but OK
    stdio: StdioMode
    configuration_error_after_activation: AppErrorSection
    max_receive_bytes: int
