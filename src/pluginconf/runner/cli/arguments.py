"""The command-line arguments of `pluginconf plugin`, `pluginconf host` and `pluginconf list`.

Kept apart from command.py so that building the parser imports neither pytest nor the
runner: `pluginconf reference-plugin` shares the parser and must start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pluginconf.runner.cli.sizes import size_argument

PROFILES = ("transport", "hooks", "sdk")
SUITES = ("plugin", "host")
AUTO_MTLS_CHOICES = ("always", "never", "auto")
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_HOST_MAX_BODY = 256 * 1024 * 1024
DEFAULT_CACHE_DIR = ".pluginconf_cache"


def _workers(text: str) -> str:
    if text == "auto" or (text.isdigit() and int(text) >= 0):
        return text
    raise argparse.ArgumentTypeError(f"-n {text!r}: expected a number of workers or 'auto'")


def _add_target_arguments(parser: argparse.ArgumentParser, suite: str) -> None:
    if suite == "plugin":
        what = (
            "the application whose host the suite plays: its cookie, protocol versions, "
            "profile and AutoMTLS, and which rules decide the run"
        )
    else:
        what = (
            "which rules decide the run: a go-plugin target (go-plugin, terraform, ...) judges "
            "a host built on go-plugin's client by go-plugin's rules"
        )
    parser.add_argument(
        "--target",
        dest="target_name",
        default="pluginconf",
        metavar="NAME",
        help=f"{what} (default: %(default)s, every rule; `pluginconf list targets`)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="under a go-plugin target, let pluginconf's own rules fail the run too",
    )
    parser.add_argument(
        "--auto-mtls",
        choices=AUTO_MTLS_CHOICES,
        default=None,
        help="always: every start uses AutoMTLS (as Terraform does); never: none does; auto: "
        "as each case needs (default: the target's)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both suites share."""
    parser.add_argument(
        "--run", action="append", default=[], metavar="GLOB", help="run only matching cases"
    )
    parser.add_argument(
        "--skip", action="append", default=[], metavar="GLOB", help="leave out matching cases"
    )
    parser.add_argument(
        "--known-failing",
        metavar="FILE",
        help="cases expected to fail (one id or glob per line, then the reason); one that "
        "passes fails the run",
    )
    parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
    parser.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report to FILE")
    parser.add_argument(
        "-n",
        dest="workers",
        type=_workers,
        default=None,
        metavar="N",
        help="parallel workers (pytest-xdist), each with its own target processes; 0 runs in "
        "this process, 'auto' one per CPU (default: one per CPU, at most 4, one per 10 cases)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    _add_console_arguments(parser)


def _count(option: str, least: int = 0) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if text.isdigit() and int(text) >= least:
            return int(text)
        raise argparse.ArgumentTypeError(
            f"{option} {text!r}: expected a whole number, {least} or more"
        )

    return parse


def _add_console_arguments(parser: argparse.ArgumentParser) -> None:
    """What the console shows and how the run stops: --durations, -x/--maxfail,
    --last-failed (a block of its own: other options grow next to _add_run_arguments)."""
    parser.add_argument(
        "--durations",
        type=_count("--durations"),
        default=None,
        metavar="N",
        help="after the run, list the N slowest cases (0: all of them)",
    )
    parser.add_argument(
        "-x",
        "--exitfirst",
        dest="maxfail",
        action="store_const",
        const=1,
        help="stop after the first failure (as --maxfail 1)",
    )
    parser.add_argument(
        "--maxfail",
        dest="maxfail",
        type=_count("--maxfail"),
        default=None,
        metavar="N",
        help="stop after N failures (0: never); the cases not run yet are reported as not run",
    )
    parser.add_argument(
        "--last-failed",
        "--lf",
        dest="last_failed",
        action="store_true",
        help="run only the cases that failed in the previous run of this suite against this "
        "target (all selected cases when none did, or nothing is recorded)",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="where runs record their failures for --last-failed (default: "
        f"$PLUGINCONF_CACHE_DIR, else {DEFAULT_CACHE_DIR} in the current directory)",
    )


def _add_html_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """--html and --shard (reports.md): a page for people, and a slice for one CI machine."""
    from pluginconf.runner.cli.shard import parse_shard

    parser.add_argument(
        "--html",
        metavar="FILE",
        help="write a self-contained HTML report to FILE: the summary, then every case, "
        "failures first, filterable by outcome",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=None,
        metavar="I/N",
        help="run only the I-th of N deterministic slices of the selected cases (the same on "
        "every machine); join the shards' --json reports with `pluginconf merge-reports`",
    )


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reports", nargs="+", metavar="REPORT.json", help="the JSON reports of the shards"
    )
    parser.add_argument("--json", metavar="FILE", help="write the joined JSON report to FILE")
    parser.add_argument("--junit-xml", metavar="FILE", help="write a JUnit XML report to FILE")
    parser.add_argument("--html", metavar="FILE", help="write an HTML report to FILE")


def add_plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="transport: any go-plugin gRPC plugin; hooks: any pluginconf.v1 hooks plugin; "
        "sdk: the conformance plugin, byte for byte (default: sdk for the bundled reference "
        "plugin, else the target's: hooks for pluginconf, transport for go-plugin targets)",
    )
    _add_target_arguments(parser, "plugin")
    _add_run_arguments(parser)
    _add_html_shard_arguments(parser)
    parser.add_argument(
        "--magic-cookie",
        default=None,
        metavar="KEY=VALUE",
        help="the cookie the host sets (default: the target's; PLUGINCONF_MAGIC_COOKIE="
        "pluginconf for pluginconf)",
    )
    parser.add_argument(
        "--protocol-versions",
        default=None,
        metavar="V[,V...]",
        help="app protocol versions the host offers (default: the target's; 1 for pluginconf)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the handshake; after 2 s the console counts it down "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-body",
        type=size_argument,
        default=None,
        metavar="SIZE",
        help="the largest body the sdk cases send, in bytes or with a unit (64MiB); larger "
        f"fixed sizes are skipped (default: {DEFAULT_MAX_BODY}, 64MiB)",
    )


def add_host_arguments(parser: argparse.ArgumentParser) -> None:
    _add_target_arguments(parser, "host")
    _add_run_arguments(parser)
    _add_html_shard_arguments(parser)
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the adapter has to serve HostControl, and the most a plugin is given "
        "to start (cases use at most 30 s; default: %(default)s)",
    )
    parser.add_argument(
        "--max-body",
        type=size_argument,
        default=None,
        metavar="SIZE",
        help="the largest body the ServeHTTP cases send through the host's HTTP front, in "
        "bytes or with a unit (256MiB); larger fixed sizes are skipped "
        f"(default: {DEFAULT_HOST_MAX_BODY}, 256MiB)",
    )


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "suite",
        nargs="?",
        choices=(*SUITES, "targets"),
        help="which suite's cases, or the targets (application presets); with --coverage, "
        "optional (default: both suites)",
    )
    parser.add_argument("--profile", choices=PROFILES, help="only this profile")
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="print the requirement matrix instead: for each SPEC requirement and suite, the "
        "cases that cite it and the mutants (broken plugins and hosts) they catch; with -v, "
        "their names",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print Purpose, Procedure, Asserts"
    )


def _seed(text: str) -> int:
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"--seed {text!r}: expected a non-negative integer")


def add_fuzz_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=SUITES, metavar="plugin|host", help="what to fuzz")
    parser.add_argument(
        "--examples",
        type=_count("--examples", least=1),
        default=None,
        metavar="N",
        help="examples each property runs (default: 100, of which the properties that start "
        "processes for each example run a fixed share, as pluginconf fuzz --list shows)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=None,
        metavar="N",
        help="the run's seed (default: a random one, printed); worker K uses N+K",
    )
    parser.add_argument(
        "--db",
        metavar="DIR|URL",
        help="Hypothesis example database: failures are kept there and replayed first; a "
        "directory, or redis://HOST:PORT/N for one database shared by several machines "
        "(needs pip install 'pluginconf[redis]')",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="run slice I of N of the campaign (machines given the same --seed draw "
        "distinct seeds; each runs 1/N of --examples)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
    parser.add_argument(
        "-n",
        dest="workers",
        type=_count("-n", least=1),
        default=1,
        metavar="N",
        help="workers (pytest-xdist), each running every property on its own seed and its "
        "share of the examples, with one database (default: %(default)s)",
    )
    parser.add_argument(
        "--property",
        action="append",
        default=[],
        metavar="GLOB",
        help="fuzz only matching properties (ids as --list shows them)",
    )
    parser.add_argument(
        "--reproduce",
        metavar="BLOB",
        help="replay the exact failing example a failure printed (with its --property)",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="plugin properties to run: as for pluginconf plugin (default: sdk for the "
        "bundled reference plugin, hooks for a CMD)",
    )
    parser.add_argument(
        "--max-body",
        type=size_argument,
        default=4 * 1024 * 1024 + 64 * 1024,
        metavar="SIZE",
        help="largest body an example sends or asks for, in bytes or with a unit (5MiB) "
        "(default: %(default)s, past the 4 MiB message limit)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the target has to start (default: %(default)s)",
    )
    parser.add_argument(
        "--target",
        dest="target_name",
        default="pluginconf",
        metavar="NAME",
        help="plugin: the application whose host plays (pluginconf list targets): its cookie, "
        "protocol versions and environment (default: %(default)s)",
    )
    parser.add_argument(
        "--magic-cookie",
        metavar="KEY=VALUE",
        help="plugin: the cookie the host sets (default: the target's)",
    )
    parser.add_argument(
        "--protocol-versions",
        metavar="V[,V...]",
        help="plugin: app protocol versions the host offers (default: the target's)",
    )
    parser.add_argument("--list", action="store_true", help="list the properties and exit")
