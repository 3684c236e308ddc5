"""``pluginconf bench [--quick] [--json FILE] [--only SECTION]...``

Exit status: 0 the benchmarks ran and every target was met (``--quick`` reports targets but
does not enforce them); 1 a target was missed; 2 usage error, or a benchmark could not run
(a process that did not start, a transfer that did not arrive intact); 130 interrupted.
Every process started is stopped and reaped on every path.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from pathlib import Path

import grpc
from rich.console import Console
from rich.markup import escape

from pluginconf.bench.context import BenchContext, Section
from pluginconf.bench.errors import BenchError
from pluginconf.bench.figures import Figure
from pluginconf.bench.report import bench_json, exit_status, figure_table, missed_lines
from pluginconf.bench.sections.registry import SECTIONS
from pluginconf.bench.sizes import FULL, QUICK
from pluginconf.host.client import HookError, NotServing
from pluginconf.host.errors import LaunchError
from pluginconf.runner.reports.report import EXIT_USAGE, write_json

EXIT_INTERRUPTED = 130


async def _run_sections(
    sections: list[Section], ctx: BenchContext, console: Console
) -> list[Figure]:
    # SIGINT and SIGTERM cancel this task, so that every `finally` on the way out runs:
    # plugins go through the stop sequence, servers are stopped and reaped.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    figures: list[Figure] = []
    for index, section in enumerate(sections, 1):
        console.print(f"[bold]{index}/{len(sections)} {section.name}[/bold]: {section.title}")
        started = time.monotonic()
        figures += await section.run(ctx)
        console.print(f"  [dim]{section.name} took {time.monotonic() - started:.1f} s[/dim]")
    return figures


def _reason(exc: Exception) -> str:
    """What went wrong, in words: a process that did not start, a call or stream that failed."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"a gRPC call failed with {exc.code().name}: {exc.details()}"
    if isinstance(exc, LaunchError | HookError | NotServing):
        return f"the reference plugin failed ({type(exc).__name__}): {exc}"
    return str(exc)


def run_bench(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if not console.is_terminal:  # rich would wrap at 80 columns; a log can take the table whole
        console = Console(highlight=False, width=160)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.target:
        err.print(
            "pluginconf bench: it measures the bundled reference host and plugin and takes no "
            "command after --; to time your own plugin, run `pluginconf plugin -- CMD`"
        )
        return EXIT_USAGE
    if args.json and not Path(args.json).resolve().parent.is_dir():
        err.print(f"pluginconf bench: --json {escape(args.json)}: its directory does not exist")
        return EXIT_USAGE
    sizes = QUICK if args.quick else FULL
    wanted = set(args.only or [s.name for s in SECTIONS])
    sections = [s for s in SECTIONS if s.name in wanted]
    # Kills are deliberate here: the supervisor's warnings about them would only interleave
    # with the progress lines. Errors still show.
    logging.getLogger("pluginconf").setLevel(logging.ERROR)
    console.print(f"pluginconf bench{' --quick' if args.quick else ''}: {sizes.description}")
    ctx = BenchContext(sizes, lambda line: console.print(f"  {escape(line)}"))
    started = time.monotonic()
    try:
        figures = asyncio.run(_run_sections(sections, ctx, console))
    except (asyncio.CancelledError, KeyboardInterrupt):
        err.print("pluginconf bench: interrupted; the processes it started have been stopped")
        return EXIT_INTERRUPTED
    except (BenchError, LaunchError, HookError, NotServing, grpc.aio.AioRpcError) as exc:
        err.print(f"pluginconf bench: a benchmark could not run: {escape(_reason(exc))}")
        return EXIT_USAGE
    took = time.monotonic() - started
    console.print(figure_table(figures, sizes.enforce_targets))
    missed = missed_lines(figures)
    for line in missed:
        console.print(escape(line if sizes.enforce_targets else f"{line} (not enforced)"))
    verdict = "all targets met" if not missed else f"{len(missed)} target(s) not met"
    if not sizes.enforce_targets:
        verdict += " (--quick: not enforced)"
    console.print(f"{len(figures)} figures in {took:.1f} s; {verdict}")
    if args.json:
        names = [s.name for s in sections]
        write_json(args.json, bench_json(figures, sizes, args.quick, names, took))
    return exit_status(figures, sizes)
