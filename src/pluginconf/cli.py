"""The pluginconf command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pluginconf import __version__

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2


def _cmd_reference_plugin(args: argparse.Namespace) -> int:
    from pluginconf.reference import main

    main(network=args.network)
    return EXIT_OK  # not reached: serve() exits the process


def _cmd_plugin(args: argparse.Namespace) -> int:
    from pluginconf.demo import run_demo

    return run_demo(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from pluginconf.host.serve import run_server

    return run_server(args.plugins, args.host, args.port, args.max_body)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pluginconf",
        description="Conformance suite for go-plugin style gRPC plugin systems.",
    )
    parser.add_argument("--version", action="version", version=f"pluginconf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ref = sub.add_parser("reference-plugin", help="run the bundled reference plugin (as a CMD)")
    ref.add_argument(
        "--network",
        choices=("unix", "tcp"),
        default="unix",
        help="listen on a unix socket (default) or on 127.0.0.1",
    )
    ref.set_defaults(func=_cmd_reference_plugin)

    plugin = sub.add_parser(
        "plugin",
        help="check a plugin: launch it, handshake, health, every hook, ServeHTTP, shutdown",
        description="Launch a plugin (default: the bundled reference plugin) under a small "
        "host and check it. The full conformance suite replaces this run as it lands.",
    )
    from pluginconf.demo import add_arguments

    add_arguments(plugin)
    plugin.set_defaults(func=_cmd_plugin)

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
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.target = command
    result: int = args.func(args)
    return result
