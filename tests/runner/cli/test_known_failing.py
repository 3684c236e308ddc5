"""--known-failing FILE (runner/cli/known_failing.py): entries, reasons and bad files."""

from __future__ import annotations

import pytest

from pluginconf.runner.cli.known_failing import load_known_failing
from pluginconf.runner.registry import SelectionError

IDS = ["plugin/stdio/served", "plugin/stdio/order", "plugin/health/serving"]


def test_known_failing_file(tmp_path):
    listed = tmp_path / "known"
    listed.write_text("# comment\n\nplugin/stdio/*   no GRPCStdio  # trailing\n")
    known = load_known_failing(str(listed), IDS)
    assert known.reason_for("plugin/stdio/served") == "no GRPCStdio"
    assert known.reason_for("plugin/health/serving") is None
    listed.write_text("plugin/health/serving\nplugin/typo\n")
    with pytest.raises(SelectionError, match="line 2: 'plugin/typo' matches no case"):
        load_known_failing(str(listed), IDS)


def test_an_entry_without_a_reason_names_the_file(tmp_path):
    listed = tmp_path / "known"
    listed.write_text("plugin/health/serving\n")
    known = load_known_failing(str(listed), IDS)
    assert known.reason_for("plugin/health/serving") == f"listed in {listed}"


def test_a_file_that_cannot_be_read_is_a_usage_error(tmp_path):
    missing = tmp_path / "absent"
    with pytest.raises(SelectionError) as raised:
        load_known_failing(str(missing), IDS)
    assert (
        str(raised.value) == f"--known-failing {missing}: cannot read it: No such file or directory"
    )
    with pytest.raises(SelectionError, match="cannot read it: Is a directory"):
        load_known_failing(str(tmp_path), IDS)


def test_a_line_that_matches_nothing_names_its_number_and_how_to_list_ids(tmp_path):
    listed = tmp_path / "known"
    listed.write_text("# header\n\nplugin/stdio/*\n  plugin/helth/*  typo  # comment\n")
    with pytest.raises(SelectionError) as raised:
        load_known_failing(str(listed), IDS)
    assert str(raised.value) == (
        f"--known-failing {listed}, line 4: 'plugin/helth/*' matches no case; "
        "`pluginconf list` shows the ids"
    )


def test_no_file_lists_nothing():
    assert load_known_failing(None, IDS).reason_for("plugin/stdio/served") is None
