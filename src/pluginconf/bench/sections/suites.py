"""Suite runs: the wall time of ``pluginconf plugin`` and ``pluginconf host`` against the
bundled references, as a user runs them (default workers, start-up included).

``--quick`` runs one group of cases of each suite instead, to show that the runs work; its
figures are then named ``*_subset_wall`` and have no target.
"""

from __future__ import annotations

from pluginconf.bench.context import BenchContext
from pluginconf.bench.figures import Figure, at_most
from pluginconf.bench.processes.runs import run_pluginconf

TARGETS_S = {"plugin": 30.0, "host": 90.0}
QUICK_RUN = {"plugin": "plugin/handshake/*", "host": "host/shutdown/*"}
RUN_TIMEOUT_S = 600.0


async def suite_wall_time(suite: str, run_glob: str | None) -> tuple[float, dict[str, int]]:
    """Seconds for ``pluginconf SUITE`` to finish, and its JSON summary; every case must pass
    (or skip), or the figure would time a broken run."""
    words = [suite] + (["--run", run_glob] if run_glob else [])
    seconds, report = await run_pluginconf(words, RUN_TIMEOUT_S)
    summary: dict[str, int] = report["summary"]
    return seconds, summary


async def run(ctx: BenchContext) -> list[Figure]:
    figures = []
    for suite in ("plugin", "host"):
        run_glob = QUICK_RUN[suite] if ctx.sizes.quick_suites else None
        seconds, summary = await suite_wall_time(suite, run_glob)
        cases = sum(summary.get(k, 0) for k in ("passed", "failed", "skipped", "xfailed"))
        ctx.progress(
            f"pluginconf {suite}{f' --run {run_glob!r}' if run_glob else ''}: {cases} cases "
            f"({summary.get('passed', 0)} passed, {summary.get('skipped', 0)} skipped) in "
            f"{seconds:.1f} s"
        )
        if run_glob:
            figures.append(Figure(f"{suite}_suite_subset_wall", "s", seconds))
        else:
            target = at_most(TARGETS_S[suite], "s")
            figures.append(Figure(f"{suite}_suite_wall", "s", seconds, target=target))
    return figures
