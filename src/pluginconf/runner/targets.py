"""Targets: what a host of a given application does, and which rules decide a run.

``--target NAME`` presets the magic cookie, the protocol versions the host offers, the
profile and whether the host uses AutoMTLS, as that application's own host does; and it
chooses which requirement origins (spec.py) fail the run. Under ``pluginconf`` every rule
counts. Under a go-plugin application's target, pluginconf's own stricter rules (origin
``pluginconf``) do not decide: a broken one is reported as a recommendation not met, unless
``--strict``. ``--magic-cookie``, ``--protocol-versions`` and ``--auto-mtls``
override the preset.

Each application's facts are taken from its own source, named in ``source``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pluginconf.project import doc_url
from pluginconf.protocol.constants import DEFAULT_MAGIC_COOKIE, MagicCookie
from pluginconf.runner.model import Profile
from pluginconf.runner.spec import Origin


class AutoMTLS(enum.StrEnum):
    """Whether the host sets PLUGIN_CLIENT_CERT when it starts a plugin."""

    ALWAYS = "always"  # every start (Terraform): cases about plaintext starts do not apply
    NEVER = "never"  # never: the AutoMTLS cases do not apply
    AUTO = "auto"  # both, as each case needs (the default)


# A go-plugin application is judged by go-plugin's rules, and, where it speaks pluginconf's
# hooks protocol, by that protocol's definition and the Mattermost semantics it follows.
GO_PLUGIN_RULES = frozenset(Origin) - {Origin.PLUGINCONF}
EVERY_RULE = frozenset(Origin)


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    magic_cookie: MagicCookie
    protocol_versions: tuple[int, ...]
    profile: Profile
    auto_mtls: AutoMTLS
    # The origins whose MUST requirements fail the run; the others are recommendations.
    decisive: frozenset[Origin]
    # Where the cookie, versions and AutoMTLS were read: the application's own source.
    source: str
    # What else that host puts in every plugin's environment (name, value).
    env: tuple[tuple[str, str], ...] = ()
    # The go-plugin protocol the application's plugins speak: grpc, or netrpc (Mattermost),
    # of which the suite checks only what needs no call.
    protocol: str = "grpc"
    # Whether that host sets PLUGIN_UNIX_SOCKET_DIR. go-plugin's client sets it only for a
    # RunnerFunc (1.5.0 and later), which the applications' hosts do not use for ordinary
    # plugins: under their targets the suite does not set it either, and TR-1 does not apply.
    sets_unix_socket_dir: bool = True

    @property
    def go_plugin_based(self) -> bool:
        """An application built on go-plugin, judged by go-plugin's rules."""
        return Origin.PLUGINCONF not in self.decisive


def _cookie(text: str) -> MagicCookie:
    return MagicCookie.parse(text)


TARGETS: tuple[Target, ...] = (
    Target(
        name="pluginconf",
        summary="pluginconf's own protocol: every rule of its SPEC decides the run",
        magic_cookie=DEFAULT_MAGIC_COOKIE,
        protocol_versions=(1,),
        profile=Profile.HOOKS,
        auto_mtls=AutoMTLS.AUTO,
        decisive=EVERY_RULE,
        source=f"{doc_url('docs/SPEC.md')}, Appendix A",
    ),
    Target(
        name="go-plugin",
        summary="any application built on go-plugin: judged by go-plugin's rules; give the "
        "application's cookie and versions with --magic-cookie and --protocol-versions "
        "(the default is go-plugin's own examples')",
        magic_cookie=_cookie("BASIC_PLUGIN=hello"),
        protocol_versions=(1,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.AUTO,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/go-plugin examples/basic and examples/grpc (HandshakeConfig)",
    ),
    Target(
        name="terraform",
        summary="Terraform providers and provisioners: gRPC, protocol 5 or 6, always AutoMTLS "
        "(Terraform turns it off only for TF_DISABLE_PLUGIN_TLS, meant for SDK tests)",
        magic_cookie=_cookie(
            "TF_PLUGIN_MAGIC_COOKIE="
            "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
        ),
        protocol_versions=(5, 6),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.ALWAYS,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/terraform internal/plugin/serve.go (Handshake), internal/plugin/"
        "plugin.go (VersionedPlugins), internal/command/meta_providers.go (AutoMTLS)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="vault",
        summary="Vault secrets and auth backends, as Vault starts them first: protocol 5 "
        "with AutoMTLS. Vault's fallback to 3,4 uses Vault's own TLS through its API, which "
        "the suite does not provide",
        magic_cookie=_cookie("VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20"),
        protocol_versions=(5,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.ALWAYS,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/vault sdk/plugin/serve.go (HandshakeConfig), sdk/plugin/"
        "plugin_v5.go, sdk/helper/pluginutil/run_config.go (environment)",
        env=(("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"), ("VAULT_PLUGIN_METADATA_MODE", "false")),
        sets_unix_socket_dir=False,
    ),
    Target(
        name="vault-database",
        summary="Vault database plugins (dbplugin v5): protocols 5 and 6 (6: multiplexed), "
        "always AutoMTLS",
        magic_cookie=_cookie("VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb"),
        protocol_versions=(5, 6),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.ALWAYS,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/vault sdk/database/dbplugin/v5/grpc_database_plugin.go "
        "(handshakeConfig), v5/plugin_client.go (PluginSets, AutoMTLS)",
        env=(("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true"), ("VAULT_PLUGIN_METADATA_MODE", "false")),
        sets_unix_socket_dir=False,
    ),
    Target(
        name="nomad",
        summary="Nomad task drivers and device plugins: gRPC, protocol 1, no AutoMTLS (Nomad "
        "agrees its own API version over gRPC after connecting)",
        magic_cookie=_cookie(
            "NOMAD_PLUGIN_MAGIC_COOKIE="
            "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255"
        ),
        protocol_versions=(1,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.NEVER,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/nomad plugins/base/plugin.go (Handshake), helper/pluginutils/loader/"
        "loader.go (dispensePlugin)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="tflint",
        summary="TFLint rulesets: gRPC, protocol 11, no AutoMTLS; the host serves its Runner "
        "to the plugin through the broker",
        magic_cookie=_cookie(
            "TFLINT_RULESET_PLUGIN=5adSn1bX8nrDfgBqiAqqEkC6OE1h3iD8SqbMc5UUONx8x3xCF0KlPDsBRNDjoYDP"
        ),
        protocol_versions=(11,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.NEVER,
        decisive=GO_PLUGIN_RULES,
        source="terraform-linters/tflint-plugin-sdk plugin/host2plugin/plugin.go "
        "(handshakeConfig), plugin/host2plugin/client.go (NewClient)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="waypoint",
        summary="Waypoint plugins: gRPC, protocol 1, no AutoMTLS (Waypoint turns it off: it "
        "fails with the broker listening on the host's side)",
        magic_cookie=_cookie(
            "WAYPOINT_PLUGIN=be6c1928786a4df0222c13eef44ac846da2c0d461d99addc93f804601c6b7205"
        ),
        protocol_versions=(1,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.NEVER,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/waypoint-plugin-sdk internal/plugin/plugin.go (Handshake, Plugins), "
        "internal-shared/pluginclient/client.go (ClientConfig)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="grafana",
        summary="Grafana backend plugins: gRPC, protocol 2, no AutoMTLS (the cookie names the "
        "plugin type; datasource here, --magic-cookie grafana_plugin_type=app for apps)",
        magic_cookie=_cookie("grafana_plugin_type=datasource"),
        protocol_versions=(2,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.NEVER,
        decisive=GO_PLUGIN_RULES,
        source="grafana/grafana-plugin-sdk-go backend/grpcplugin (handshake, ProtocolVersion)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="boundary",
        summary="Boundary host and storage plugins: gRPC, protocol 1, always AutoMTLS",
        magic_cookie=_cookie("HASHICORP_BOUNDARY_PLUGIN=boundary-plugin"),
        protocol_versions=(1,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.ALWAYS,
        decisive=GO_PLUGIN_RULES,
        source="hashicorp/boundary internal/plugin (HandshakeConfig, ClientConfig AutoMTLS)",
        sets_unix_socket_dir=False,
    ),
    Target(
        name="mattermost",
        summary="Mattermost server plugins: go-plugin's netrpc protocol, version 1, no "
        "AutoMTLS. pluginconf speaks gRPC only: the cases that need no gRPC call run (the "
        "cookie, versions, the handshake, sockets, signals, the host's exit), the rest skip",
        magic_cookie=_cookie("MATTERMOST_PLUGIN=Securely message teams, anywhere."),
        protocol_versions=(1,),
        profile=Profile.TRANSPORT,
        auto_mtls=AutoMTLS.NEVER,
        decisive=GO_PLUGIN_RULES,
        source="mattermost/mattermost server/public/plugin api.go (handshake), supervisor.go "
        "(newSupervisor: no AllowedProtocols, so netrpc; no AutoMTLS; 3 s start timeout)",
        protocol="netrpc",
        sets_unix_socket_dir=False,
    ),
)

DEFAULT_TARGET = "pluginconf"


class UnknownTarget(ValueError):
    """A --target name that no preset has; a usage error."""


def target_named(name: str) -> Target:
    for target in TARGETS:
        if target.name == name:
            return target
    raise UnknownTarget(
        f"--target {name!r} is not a known target; expected one of "
        f"{', '.join(t.name for t in TARGETS)} (`pluginconf list targets` describes them)"
    )
