"""`--db`: the Hypothesis example database, a directory or a Redis server.

``redis://HOST:PORT/N`` (``rediss://`` with TLS, ``unix:///PATH?db=N`` for a socket) is
Hypothesis's RedisExampleDatabase, so that campaigns on several machines share their
failures; it needs the ``redis`` package (``pip install 'pluginconf[redis]'``).
"""

from __future__ import annotations

from typing import Any

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from pluginconf.extras import install_hint

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# How long a connection to the Redis server may take before the run is refused.
CONNECT_TIMEOUT_S = 5.0


def is_redis(location: str) -> bool:
    return location.startswith(REDIS_SCHEMES)


def _redis_client(url: str) -> Any:
    try:
        import redis
    except ModuleNotFoundError:
        raise ValueError(install_hint(f"--db {url}", "redis", "the redis package")) from None
    try:
        return redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=30.0
        )
    except ValueError as exc:
        raise ValueError(
            f"--db {url}: not a Redis URL ({exc}); expected redis://HOST:PORT/DB or "
            "unix:///PATH?db=DB"
        ) from None


def check_database(location: str | None) -> None:
    """Refuse a database that cannot be used, before the run (ValueError with why)."""
    if location is None or not is_redis(location):
        return
    client = _redis_client(location)
    import redis

    try:
        client.ping()
    except redis.RedisError as exc:
        raise ValueError(
            f"--db {location}: the Redis server cannot be reached ({exc}); start it, or "
            "give a directory for a local database"
        ) from None
    finally:
        client.close()


def open_database(location: str | None) -> ExampleDatabase | None:
    if not location:
        return None
    if is_redis(location):
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(_redis_client(location))
    return DirectoryBasedExampleDatabase(location)
