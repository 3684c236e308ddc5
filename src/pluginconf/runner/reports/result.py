"""What running a conformance case or a fuzz property's share came to, and how it travels.

One record for both. The engine makes a case's (verdict.py judges it), the fuzz campaign a
property's (fuzz/campaign.py). It goes from the pytest process that ran it (an xdist worker,
say) to the controlling process as JSON in a pytest user property (:func:`attach`,
:func:`carried`), and the reports are made from it there (report.py for the cases,
fuzz/report.py for the properties).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pluginconf.runner.model import Outcome

if TYPE_CHECKING:
    import pytest


@dataclass(frozen=True)
class Result:
    id: str  # the case id, or the property's full id ("plugin/serve-http/echo-roundtrip")
    outcome: Outcome
    # The evidence of a failure; for a case that passed, what it still said (its notes).
    message: str = ""
    duration_s: float = 0.0
    # For a failure: the requirements it proves broken (empty: every one the case cites).
    violated: tuple[str, ...] = ()
    # A judged case: where the requirements its verdict rests on come from (verdict.py).
    origin: str = ""
    # What a fuzz property's share adds: the examples it ran (shrinking included), its seed,
    # the shrunk example as Hypothesis told it, the blob that replays it ("" when Hypothesis
    # gave none), the command that does (`pluginconf fuzz` fills it in), and what the share
    # said besides a failure (an example that no longer fails, say).
    examples: int = 0
    seed: int | None = None
    example: str = ""
    blob: str = ""
    reproduce: str = ""
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": str(self.outcome),
            "message": self.message,
            "duration_s": self.duration_s,
            "violated": list(self.violated),
            "origin": self.origin,
            "examples": self.examples,
            "seed": self.seed,
            "example": self.example,
            "blob": self.blob,
            "reproduce": self.reproduce,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Result:
        return cls(
            id=str(data["id"]),
            outcome=Outcome(data["outcome"]),
            message=str(data["message"]),
            duration_s=float(data["duration_s"]),
            violated=tuple(data["violated"]),
            origin=str(data["origin"]),
            examples=int(data["examples"]),
            seed=None if data["seed"] is None else int(data["seed"]),
            example=str(data["example"]),
            blob=str(data["blob"]),
            reproduce=str(data["reproduce"]),
            notes=tuple(data["notes"]),
        )


def attach(item: pytest.Item, name: str, result: Result) -> None:
    """Give ``item``'s report ``result``, as the user property ``name``."""
    item.user_properties.append((name, json.dumps(result.to_json())))


def carried(report: pytest.TestReport, name: str) -> Result | None:
    """The result a report carries as the user property ``name``; None when it has none."""
    for key, value in report.user_properties:
        if key == name:
            return Result.from_json(json.loads(str(value)))
    return None
