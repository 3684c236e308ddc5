"""The fault table of a mutant program: each fault's name, the rule it breaks, and its switch.

Both mutant programs (host_mutant.py, reference_mutant.py) keep one: ``@fault`` fills
``faults`` (FAULTS, bugs a fixed case catches), ``@hidden`` fills ``hidden`` (HIDDEN, bugs
only fuzzing finds), in the order the fault modules define them, which is the order the
programs list them in. ``patch`` switches a fault on in the program's own process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

FaultT = TypeVar("FaultT", bound=Callable[..., None])


class FaultTable(Generic[FaultT]):
    """One program's faults, by name: (what the fault breaks, the function that switches it on)."""

    def __init__(self, program: str) -> None:
        self.program = program  # names the program in the errors of patch()
        self.faults: dict[str, tuple[str, FaultT]] = {}
        self.hidden: dict[str, tuple[str, FaultT]] = {}

    def fault(self, name: str, breaks: str) -> Callable[[FaultT], FaultT]:
        """Registers a fault a fixed case catches."""
        return _register(self.faults, name, breaks)

    def hidden_fault(self, name: str, breaks: str) -> Callable[[FaultT], FaultT]:
        """Registers a bug only fuzzing finds (tests/fuzz/test_fuzz_finds_bugs.py)."""
        return _register(self.hidden, name, breaks)

    def patch(self, owner: Any, name: str, value: Any) -> None:
        """Replace ``owner.name``, which must exist: a renamed target must fail loudly."""
        if not hasattr(owner, name):
            raise SystemExit(f"{self.program}: {owner!r} has no attribute {name!r} to patch")
        setattr(owner, name, value)


def _register(
    table: dict[str, tuple[str, FaultT]], name: str, breaks: str
) -> Callable[[FaultT], FaultT]:
    def register(fn: FaultT) -> FaultT:
        table[name] = (breaks, fn)
        return fn

    return register
