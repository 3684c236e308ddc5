"""The pluginconf command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pluginconf import __version__

EXIT_OK = 0


def _cmd_reference_plugin(args: argparse.Namespace) -> int:
    from pluginconf.reference import main

    main(network=args.network)
    return EXIT_OK  # not reached: serve() exits the process


def _cmd_reference_host_adapter(args: argparse.Namespace) -> int:
    from pluginconf.host.adapter import run_adapter

    return run_adapter(verbose=args.verbose)


def _cmd_plugin(args: argparse.Namespace) -> int:
    from pluginconf.runner.command import run_plugin

    return run_plugin(args)


def _cmd_host(args: argparse.Namespace) -> int:
    from pluginconf.runner.command import run_host

    return run_host(args)


def _cmd_list(args: argparse.Namespace) -> int:
    from pluginconf.runner.command import run_list

    return run_list(args)


def _cmd_fuzz(args: argparse.Namespace) -> int:
    from pluginconf.fuzz.command import run_fuzz

    return run_fuzz(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from pluginconf.bench.command import run_bench

    return run_bench(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from pluginconf.host.serve import run_server

    return run_server(args.plugins, args.host, args.port, args.max_body)


def build_parser() -> argparse.ArgumentParser:
    from pluginconf.bench.arguments import add_bench_arguments
    from pluginconf.runner.arguments import (
        add_fuzz_arguments,
        add_host_arguments,
        add_list_arguments,
        add_plugin_arguments,
    )

    parser = argparse.ArgumentParser(
        prog="pluginconf",
        description="Conformance suite for go-plugin style gRPC plugin systems.",
    )
    parser.add_argument("--version", action="version", version=f"pluginconf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plugin = sub.add_parser(
        "plugin",
        help="check a plugin: the suite plays the host (default: the bundled reference plugin)",
        description="Run the plugin conformance suite against CMD, given after --, or against "
        "the bundled reference plugin. Exit status: 0 every MUST case passed and nothing "
        "listed as known failing passed; 1 conformance failures; 2 usage error, or the "
        "plugin could not be started at all.",
    )
    add_plugin_arguments(plugin)
    plugin.set_defaults(func=_cmd_plugin)

    host = sub.add_parser(
        "host",
        help="check a host: the suite supplies fake plugins and drives the host through its "
        "adapter (default: the bundled reference host)",
        description="Run the host conformance suite against the host adapter ADAPTER_CMD, "
        "given after --, or against the bundled reference host's adapter. The adapter serves "
        "HostControl at PLUGINCONF_CONTROL_ADDRESS (docs/host-adapter.md). Exit status: 0 "
        "every MUST case passed and nothing listed as known failing passed; 1 conformance "
        "failures; 2 usage error, or the adapter could not be started at all.",
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
    )
    add_bench_arguments(bench)
    bench.set_defaults(func=_cmd_bench)

    listing = sub.add_parser(
        "list",
        help="list a suite's cases: ids, levels, profiles, requirement text",
    )
    add_list_arguments(listing)
    listing.set_defaults(func=_cmd_list)

    ref = sub.add_parser("reference-plugin", help="run the bundled reference plugin (as a CMD)")
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
    )
    adapter.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO (default: WARNING), on stderr"
    )
    adapter.set_defaults(func=_cmd_reference_host_adapter)

    serve = sub.add_parser(
        "serve",
        help="run the reference host over a plugin directory, with its HTTP front",
        description="Load every DIR/*/plugin.toml, start and supervise the plugins, and serve "
        "http://HOST:PORT/plugins/{plugin_id}/... through their ServeHTTP.",
    )
    serve.add_argument("--plugins", required=True, metavar="DIR", help="the plugin directory")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8065, help="port (default: %(default)s)")
    serve.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="refuse request bodies larger than this with 413",
    )
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC's core logs connection events (a GOAWAY at a plugin's shutdown, say) at INFO on
    # stderr, through the suite's console; a value the user set is kept.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.target = command
    try:
        result: int = args.func(args)
    except BrokenPipeError:
        # The reader went away (`pluginconf list plugin | head`): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return result
