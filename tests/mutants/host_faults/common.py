"""What every host fault uses: the host mutant's fault table, and the ways a fault patches."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from typing import Any

from fault_registry import FaultTable

from pluginconf.host.http.front import _Exchange

Fault = Callable[[], None]
TABLE: FaultTable[Fault] = FaultTable("host_mutant")
fault = TABLE.fault
hidden = TABLE.hidden_fault
patch = TABLE.patch


def shadow(module: types.ModuleType, **overrides: Any) -> types.ModuleType:
    """A stand-in for ``module`` to put in one importer's namespace (with patch): the
    ``overrides`` there, everything else the module's own. The module itself is unchanged."""
    for name in overrides:
        if not hasattr(module, name):
            raise SystemExit(f"{TABLE.program}: {module.__name__} has no attribute {name!r}")

    class Shadow(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(module, name)

    stand_in = Shadow(module.__name__)
    stand_in.__dict__.update(overrides)
    return stand_in


async def forever() -> None:
    await asyncio.Event().wait()


def exchange_streams(wrap: Callable[[_Exchange], None]) -> None:
    """Let ``wrap`` replace an exchange's receive and send as it is made."""
    init = _Exchange.__init__

    def wrapped(self: _Exchange, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        wrap(self)

    patch(_Exchange, "__init__", wrapped)
