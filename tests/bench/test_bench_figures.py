"""`pluginconf bench`'s figures and targets: the rule each target holds a figure to, the JSON
form of a figure, percentiles, the exit status and the lines for missed targets."""

from __future__ import annotations

import pytest

from pluginconf.bench.arguments import SECTION_NAMES
from pluginconf.bench.figures import (
    Figure,
    at_least,
    at_most,
    baseline_plus,
    p99,
    ratio_at_least,
    ratio_at_most,
)
from pluginconf.bench.report import exit_status, missed_lines, show
from pluginconf.bench.sections.registry import NAMES
from pluginconf.bench.sizes import FULL, QUICK

# A figure's JSON keys: the contract of `pluginconf bench --json` (DESIGN.md).
DESIGN_KEYS = {"name", "unit", "value", "baseline_name", "baseline", "ratio", "target", "met"}


@pytest.mark.parametrize(
    ("target", "value", "baseline", "met", "text"),
    [
        (ratio_at_most(1.25), 1.25, 1.0, True, "<= 1.25x baseline"),
        (ratio_at_most(1.25), 1.26, 1.0, False, "<= 1.25x baseline"),
        (ratio_at_least(0.9), 90.0, 100.0, True, ">= 0.9x baseline"),
        (ratio_at_least(0.9), 89.9, 100.0, False, ">= 0.9x baseline"),
        (ratio_at_least(0.5), 10.0, None, False, ">= 0.5x baseline"),
        (at_most(64, "MiB"), 64.0, None, True, "<= 64 MiB"),
        (at_most(64, "MiB"), 64.1, None, False, "<= 64 MiB"),
        (at_most(0.05, "s"), 0.051, None, False, "<= 50 ms"),
        (at_most(30, "s"), 29.0, None, True, "<= 30 s"),
        (at_least(50, "/s"), 49.9, 200.0, False, ">= 50/s"),
        (baseline_plus(0.1, "s"), 0.40, 0.30, True, "<= baseline + 100 ms"),
        (baseline_plus(0.1, "s"), 0.41, 0.30, False, "<= baseline + 100 ms"),
    ],
)
def test_a_target_is_met_or_missed_by_its_rule(target, value, baseline, met, text):
    figure = Figure("x", "s", value, "b" if baseline else None, baseline, target)
    assert figure.met is met
    assert target.describe() == text
    assert figure.to_json()["met"] is met


def test_a_figure_reports_the_design_keys_with_its_ratio():
    figure = Figure(
        "hook_roundtrip_p50", "s", 0.00134, "grpcio_unary_p50", 0.00107, ratio_at_most(1.25)
    )
    data = figure.to_json()
    assert set(data) == DESIGN_KEYS
    assert data["ratio"] == round(0.00134 / 0.00107, 3)
    assert data["met"] is False
    assert Figure("graceful_shutdown_max", "s", 0.01).to_json()["ratio"] is None


def test_p99_is_the_nearest_rank():
    assert p99(list(range(1, 101))) == 99
    assert p99([5.0]) == 5.0


def test_a_missed_target_fails_a_full_run_but_not_a_quick_one():
    missed = [Figure("http_echo_throughput", "MiB/s", 10.0, "raw", 100.0, ratio_at_least(0.5))]
    met = [Figure("plugin_rss_growth", "MiB", 3.0, target=at_most(64, "MiB"))]
    assert exit_status(met + missed, FULL) == 1
    assert exit_status(met, FULL) == 0
    assert exit_status(met + missed, QUICK) == 0
    assert missed_lines(missed) == [
        "target not met: http_echo_throughput = 10.0 MiB/s (ratio 0.10), target >= 0.5x baseline"
    ]


def test_the_sections_are_the_ones_the_cli_offers():
    assert NAMES == SECTION_NAMES


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.00134, "s", "1.34 ms"),
        (12.5, "s", "12.5 s"),
        (118.4, "MiB/s", "118 MiB/s"),
        (3.0, "MiB", "3.00 MiB"),
        (61.23, "/s", "61.2/s"),
    ],
)
def test_a_value_is_shown_in_the_unit_people_read(value, unit, text):
    assert show(value, unit) == text
