"""Byte sizes on the command line (runner/cli/sizes.py)."""

from __future__ import annotations

import argparse

import pytest

from pluginconf.runner.cli.sizes import FORMS, parse_size, size_argument


def test_sizes_take_units():
    assert parse_size("64MiB") == 64 * 1024 * 1024
    assert parse_size("512 KiB") == 512 * 1024
    assert parse_size("1gib") == 1024**3
    assert parse_size("2MB") == 2_000_000
    assert parse_size("1024") == 1024
    assert parse_size(" 3 b ") == 3
    assert parse_size("5kb") == 5000 and parse_size("1GB") == 10**9
    for bad in ("64MQ", "-5", "1.5MiB", "", "MiB", "64 Mi B"):
        with pytest.raises(ValueError, match="expected a number of bytes"):
            parse_size(bad)


def test_an_option_value_that_is_not_a_size_is_an_argument_error():
    assert size_argument("1KiB") == 1024
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        size_argument("lots")
    assert str(raised.value) == f"'lots' is not a size; expected {FORMS}"
