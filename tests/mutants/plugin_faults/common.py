"""What every plugin fault uses: the reference mutant's fault table and the plugin it changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fault_registry import FaultTable

from pluginconf.plugin import ServeConfig
from pluginconf.reference.http_app import ReferenceApp
from pluginconf.reference.plugin import ReferencePlugin


class Mutant:
    def __init__(self, state_dir: str) -> None:
        self.plugin: ReferencePlugin = ReferencePlugin()
        self.config = ServeConfig()
        self.state_dir = state_dir


Fault = Callable[[Mutant], None]
TABLE: FaultTable[Fault] = FaultTable("reference_mutant")
fault = TABLE.fault
hidden = TABLE.hidden_fault
patch = TABLE.patch


def replace_route(m: Mutant, route: str, handler: Any) -> None:
    app: ReferenceApp = m.plugin.app
    app._routes[route] = handler
