"""--shard I/N (runner/cli/shard.py): parsing, and a deterministic round-robin slice."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from pluginconf.runner.cli.shard import Shard, parse_shard, take_shard
from pluginconf.runner.registry import load_cases


@dataclass(frozen=True)
class _Item:
    id: str


def test_shards_are_a_round_robin_over_sorted_ids():
    cases = load_cases("plugin")
    slices = [take_shard(cases, Shard(i, 3)) for i in (1, 2, 3)]
    ids = sorted(c.id for c in cases)
    assert [c.id for c in slices[0]] == [i for i in (c.id for c in cases) if i in ids[0::3]]
    assert sum(len(s) for s in slices) == len(cases)


def test_shards_are_disjoint_cover_the_selection_and_keep_its_order():
    items = [_Item(i) for i in ("e", "a", "d", "b", "c")]
    slices = [take_shard(items, Shard(i, 2)) for i in (1, 2)]
    assert [[x.id for x in s] for s in slices] == [["e", "a", "c"], ["d", "b"]]
    assert sorted(x.id for s in slices for x in s) == sorted(x.id for x in items)
    assert take_shard(items, Shard(1, 1)) == items


def test_a_shard_with_no_case_says_how_many_shards_fit():
    with pytest.raises(ValueError, match="this shard has no case") as raised:
        take_shard([_Item("a"), _Item("b")], Shard(3, 3))
    assert str(raised.value) == (
        "--shard 3/3: this shard has no case, since the selection has only 2; "
        "use at most 2 shards for it"
    )
    with pytest.raises(ValueError, match="only 1; use at most 1 shard for it"):
        take_shard([_Item("a")], Shard(2, 2))


def test_shard_text_parses_to_index_and_count():
    assert parse_shard("2/5") == Shard(2, 5)
    assert str(Shard(2, 5)) == "2/5"
    assert Shard(2, 5, of_cases=9).to_json() == {"index": 2, "count": 5, "of_cases": 9}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "'0/2': I must be between 1 and N, and N at least 1 (1/2 to 2/2)"),
        ("3/2", "'3/2': I must be between 1 and N"),
        ("1/0", "(1/1 to 1/1)"),
        ("-1/2", "'-1/2': expected I/N, two whole numbers"),
        ("1", "'1': expected I/N"),
        ("a/b", "'a/b': expected I/N"),
    ],
)
def test_a_bad_shard_text_is_an_argument_error(text, message):
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse_shard(text)
    assert message in str(raised.value)
