"""Where the project lives: help texts point here, since the wheel ships no docs/ folder."""

from __future__ import annotations

PROJECT_URL = "https://github.com/pluginconf/pluginconf"


def doc_url(path: str) -> str:
    """The web address of a file of the repository, e.g. ``docs/host-adapter.md``."""
    return f"{PROJECT_URL}/blob/main/{path}"
