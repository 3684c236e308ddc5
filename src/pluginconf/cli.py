"""The pluginconf command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pluginconf import __version__
from pluginconf.cli_parser import CommandParser, check_leftovers, check_subcommand
from pluginconf.project import PROJECT_URL, doc_url

EXIT_OK = 0
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def _cmd_reference_plugin(args: argparse.Namespace) -> int:
    from pluginconf.reference import main

    main(network=args.network)
    return EXIT_OK  # not reached: serve() exits the process


def _cmd_reference_host_adapter(args: argparse.Namespace) -> int:
    from pluginconf.host.adapter.main import run_adapter

    return run_adapter(verbose=args.verbose)


def _cmd_plugin(args: argparse.Namespace) -> int:
    from pluginconf.runner.cli.command import run_plugin

    return run_plugin(args)


def _cmd_host(args: argparse.Namespace) -> int:
    from pluginconf.runner.cli.command import run_host

    return run_host(args)


def _cmd_list(args: argparse.Namespace) -> int:
    from pluginconf.runner.cli.listing import run_list

    return run_list(args)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from pluginconf.fuzz.command import run_fuzz

    return run_fuzz(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from pluginconf.bench.command import run_bench

    return run_bench(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from pluginconf.host.http.serve import run_server

    return run_server(args.plugins, args.host, args.port, args.max_body)


def _cmd_merge_reports(args: argparse.Namespace) -> int:
    from pluginconf.runner.reports.merge import run_merge

    return run_merge(args.reports, args.json, args.junit_xml, args.html)


def build_parser() -> CommandParser:
    from pluginconf.bench.arguments import add_bench_arguments
    from pluginconf.runner.cli.arguments import (
        add_fuzz_arguments,
        add_host_arguments,
        add_list_arguments,
        add_merge_arguments,
        add_plugin_arguments,
    )
    from pluginconf.runner.cli.sizes import size_argument

    parser = CommandParser(
        prog="pluginconf",
        description="Conformance suite for go-plugin style gRPC plugin systems. "
        f"Documentation: {PROJECT_URL}",
        examples=(
            "pluginconf plugin -- ./my-plugin        # check a plugin: the suite plays the host",
            "pluginconf host -- ./my-host-adapter    # check a host: the suite plays the plugins",
        ),
    )
    parser.add_argument("--version", action="version", version=f"pluginconf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices

    plugin = sub.add_parser(
        "plugin",
        help="check a plugin: the suite plays the host (default: the bundled reference plugin)",
        description="Run the plugin conformance suite against CMD, given after --, or against "
        "the bundled reference plugin. Exit status: 0 every MUST case passed and nothing "
        "listed as known failing passed; 1 conformance failures; 2 usage error, or the "
        "plugin could not be started at all.",
        command_metavar="CMD ARGS...",
        command_role="the plugin's command",
        examples=(
            "pluginconf plugin -- ./my-plugin --its-flag",
            "pluginconf plugin --target terraform --run 'plugin/handshake/*' -- "
            "./terraform-provider-null",
        ),
    )
    add_plugin_arguments(plugin)
    plugin.set_defaults(func=_cmd_plugin)

    host = sub.add_parser(
        "host",
        help="check a host: the suite supplies fake plugins and drives the host through its "
        "adapter (default: the bundled reference host)",
        description="Run the host conformance suite against the host adapter ADAPTER_CMD, "
        "given after --, or against the bundled reference host's adapter. The adapter serves "
        f"HostControl at PLUGINCONF_CONTROL_ADDRESS ({doc_url('docs/host-adapter.md')}). "
        "Exit status: 0 every MUST case passed and nothing listed as known failing passed; "
        "1 conformance failures; 2 usage error, or the adapter could not be started at all.",
        command_metavar="ADAPTER_CMD ARGS...",
        command_role="the adapter's command",
        examples=(
            "pluginconf host -- ./my-host-adapter",
            "pluginconf host --run 'host/crash/*' --json host.json -- python3 adapter.py",
        ),
    )
    add_host_arguments(host)
    host.set_defaults(func=_cmd_host)

    fuzz = sub.add_parser(
        "fuzz",
        help="property-based fuzzing of a plugin or a host (Hypothesis)",
        description="Fuzz a plugin (CMD after --) or a host adapter (ADAPTER_CMD after --), "
        "or without a command the bundled reference. Each failure prints its shrunk example "
        "and a command that replays it exactly. Exit status: 0 no property failed; 1 a "
        "property failed; 2 usage error, or the target could not be started at all.",
        command_metavar="CMD ARGS...",
        command_role="the plugin's or the adapter's command",
        examples=(
            "pluginconf fuzz plugin --examples 1000 -- ./my-plugin",
            "pluginconf fuzz host --seed 1234 --db .fuzz-db -- ./my-host-adapter",
        ),
    )
    add_fuzz_arguments(fuzz)
    fuzz.set_defaults(func=_cmd_fuzz)

    bench = sub.add_parser(
        "bench",
        help="measure the reference host and plugin against raw grpcio, in the same run",
        description="Measure the bundled reference host and plugin beside a raw grpcio "
        "baseline taken in the same run: hook latency, streaming throughput, memory, crash "
        "recovery, shutdown, suite wall times and the fuzzer's rate; print a table of each "
        "figure, its baseline, the ratio and its target. Exit status: 0 every target met "
        "(--quick does not enforce them); 1 a target missed; 2 usage error, or a benchmark "
        "could not run; 130 interrupted.",
        examples=("pluginconf bench --quick", "pluginconf bench --json bench.json"),
    )
    add_bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)

    listing = sub.add_parser(
        "list",
        help="list a suite's cases: ids, levels, profiles, requirement text",
        examples=("pluginconf list plugin --profile transport", "pluginconf list targets"),
    )
    add_list_arguments(listing)
    listing.set_defaults(func=_cmd_list)

    merge = sub.add_parser(
        "merge-reports",
        help="join the JSON reports of a run's shards (--shard I/N) into one report",
        description="Join the --json reports of the shards of one plugin or host run into "
        "the report the whole run would have written. Reports of different suites, targets, "
        "options or versions, overlapping cases and missing shards are refused. Exit status: "
        "the whole run's (0 every MUST case passed; 1 conformance failures; a shard's own 2 "
        "or 130/143 when it did not complete); 2 when the reports cannot be joined.",
        examples=(
            "pluginconf merge-reports shard-1.json shard-2.json --json all.json",
            "pluginconf merge-reports s*.json --junit-xml all.xml --html all.html",
        ),
    )
    add_merge_arguments(merge)
    merge.set_defaults(func=_cmd_merge_reports)

    ref = sub.add_parser(
        "reference-plugin",
        help="run the bundled reference plugin (as a CMD)",
        examples=(
            "pluginconf plugin -- pluginconf reference-plugin --network tcp",
            'pluginconf serve --plugins DIR   # with args = ["reference-plugin"] in plugin.toml',
        ),
    )
    ref.add_argument(
        "--network",
        choices=("unix", "tcp"),
        default="unix",
        help="listen on a unix socket (default) or on 127.0.0.1",
    )
    ref.set_defaults(func=_cmd_reference_plugin)

    adapter = sub.add_parser(
        "reference-host-adapter",
        help="run the bundled host's HostControl adapter (as the host suite's ADAPTER_CMD)",
        description="Serve pluginconf.conformance.v1.HostControl over the reference host at "
        "the gRPC address in PLUGINCONF_CONTROL_ADDRESS, with the host's HTTP front on "
        "127.0.0.1. SIGTERM or SIGINT stops every plugin, then the adapter exits 0; exit "
        "status 2 when PLUGINCONF_CONTROL_ADDRESS is missing or cannot be listened on.",
        examples=(
            "pluginconf host -- pluginconf reference-host-adapter --verbose",
            "PLUGINCONF_CONTROL_ADDRESS=127.0.0.1:50051 pluginconf reference-host-adapter",
        ),
    )
    adapter.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO (default: WARNING), on stderr"
    )
    adapter.set_defaults(func=_cmd_reference_host_adapter)

    serve = sub.add_parser(
        "serve",
        help="run the reference host over a plugin directory, with its HTTP front",
        description="Load every DIR/*/plugin.toml, start and supervise the plugins, and serve "
        "http://HOST:PORT/plugins/{plugin_id}/... through their ServeHTTP. Exit status: 0 "
        "stopped by SIGTERM or SIGINT; 2 usage error: no usable plugin, or the port cannot be "
        f"listened on. The manifest: {doc_url('README.md')}#serving-plugins-pluginconf-serve",
        examples=(
            "pluginconf serve --plugins plugins --port 8065",
            "pluginconf serve --plugins plugins --host 0.0.0.0 --max-body 64MiB",
        ),
    )
    serve.add_argument("--plugins", required=True, metavar="DIR", help="the plugin directory")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8065, help="port (default: %(default)s)")
    serve.add_argument(
        "--max-body",
        type=size_argument,
        default=None,
        metavar="SIZE",
        help="refuse request bodies larger than this with 413, in bytes or with a unit (64MiB)",
    )
    serve.set_defaults(func=_cmd_serve)
    return parser


def _missing_extra(exc: ModuleNotFoundError, argv: Sequence[str]) -> int:
    """The slim install (the SDK alone) lacks the suite: say which extra to install."""
    from pluginconf.extras import install_hint, missing_extra

    extra = missing_extra(exc)
    if extra is None:
        raise exc
    subcommand = next((word for word in argv if not word.startswith("-")), "")
    hint = install_hint(f"pluginconf {subcommand}".rstrip(), extra, str(exc.name))
    print(hint, file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC's core logs connection events (a GOAWAY at a plugin's shutdown, say) at INFO on
    # stderr, through the suite's console; a value the user set is kept.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    try:
        parser = build_parser()
        check_subcommand(parser, argv)
        args, extras = parser.parse_known_args(argv)
        check_leftovers(parser, args.command, extras)
        args.target = command
        result: int = args.func(args)
        # Flushed here, so that a reader gone away is seen below, not at interpreter exit.
        sys.stdout.flush()
    except ModuleNotFoundError as exc:
        return _missing_extra(exc, argv)
    except BrokenPipeError:
        # The reader went away (`pluginconf list plugin | head`): stop quietly, as cat does,
        # with the status a shell gives a process SIGPIPE ends.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return result
