"""`--shard I/N`: one machine's deterministic slice of a fuzz campaign.

A campaign of S workers (-n) on N machines is N x S shares of the examples; share K runs
every property on seed SEED+K with its share of --examples. Shard I runs shares
(I-1)*S .. I*S-1, so that N machines given the same --seed draw N x S distinct seeds and
together run the campaign's --examples, with one database (--db redis://...) between them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as written
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def first_share(self, workers: int) -> int:
        """The campaign-wide index of this shard's first share."""
        return (self.index - 1) * workers

    def total_shares(self, workers: int) -> int:
        return self.count * workers


WHOLE = Shard(1, 1)


def parse_shard(text: str) -> Shard:
    """``I/N`` with 1 <= I <= N; ValueError saying what was expected."""
    found = _SHARD.fullmatch(text)
    if found is None:
        raise ValueError(f"--shard {text!r}: expected I/N, this machine's slice I of N (e.g. 2/4)")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ValueError(
            f"--shard {text}: expected I/N with 1 <= I <= N (e.g. 1/{max(count, 2)} to "
            f"{max(count, 2)}/{max(count, 2)})"
        )
    return Shard(index, count)
