"""Which optional extra of pluginconf provides a module, for messages when one is missing.

``pip install pluginconf`` is the plugin SDK alone; the suites, the fuzzer, ``serve`` and the
benchmarks need ``pluginconf[suite]``, and a Redis example database ``pluginconf[redis]``.
"""

from __future__ import annotations

# Top-level module -> the extra that installs it.
EXTRA_OF_MODULE = {
    "pytest": "suite",
    "xdist": "suite",
    "hypothesis": "suite",
    "httpx": "suite",
    "h11": "suite",
    "uvicorn": "suite",
    "rich": "suite",
    "psutil": "suite",
    "redis": "redis",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra that would have provided the missing module, or None if it is none of ours."""
    name = (exc.name or "").split(".")[0]
    return EXTRA_OF_MODULE.get(name)


def install_hint(what: str, extra: str, module: str) -> str:
    return (
        f"{what} needs the {extra} extra ({module} is not installed): "
        f"pip install 'pluginconf[{extra}]'"
    )
