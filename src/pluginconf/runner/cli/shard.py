"""`--shard I/N`: a deterministic slice of a run's selected cases, for CI machines.

The selected ids are sorted and dealt round-robin: shard I runs the ids at positions
I-1, I-1+N, I-1+2N, ... The slices of one selection are disjoint, cover it, differ in size
by at most one, and are the same on every machine (they depend on the ids only, never on
hashing seeds or the order cases were registered in).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar


class HasId(Protocol):
    @property
    def id(self) -> str: ...


CaseT = TypeVar("CaseT", bound=HasId)


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int
    # How many cases the whole selection has (filled in when the shard is taken).
    of_cases: int = 0

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "of_cases": self.of_cases}


def parse_shard(text: str) -> Shard:
    """``I/N`` with 1 <= I <= N; argparse turns the error into a usage error (exit 2)."""
    index_text, slash, count_text = text.partition("/")
    if not slash or not index_text.isdigit() or not count_text.isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected I/N, two whole numbers, e.g. 1/4 for the first of four shards"
        )
    index, count = int(index_text), int(count_text)
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(
            f"{text!r}: I must be between 1 and N, and N at least 1 (1/{max(count, 1)} "
            f"to {max(count, 1)}/{max(count, 1)})"
        )
    return Shard(index, count)


def take_shard(cases: Sequence[CaseT], shard: Shard) -> list[CaseT]:
    """The cases of ``shard``, in their given order; ValueError when it holds none."""
    ids = sorted(c.id for c in cases)
    mine = set(ids[shard.index - 1 :: shard.count])
    if not mine:
        raise ValueError(
            f"--shard {shard}: this shard has no case, since the selection has only "
            f"{len(cases)}; use at most {len(cases)} shard{'' if len(cases) == 1 else 's'} for it"
        )
    return [c for c in cases if c.id in mine]
