"""A lock every process using one database shares, whatever machine it runs on.

Workers of a search on many machines, or runs started together, meet nowhere but in their
databases: setting up a study, counting its trials, creating a new MLflow store's tables
must be done by one at a time. PostgreSQL's advisory locks and MySQL's named locks are
held by a connection, so one that dies with its process releases its lock.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy

#: A lock held for up to a year is one held until released.
_FOREVER_S = 31_536_000


def _dialect(url: str) -> str:
    """``postgresql+psycopg2://...`` -> ``postgresql``."""
    return url.split(":", 1)[0].split("+", 1)[0]


def supports(url: str) -> bool:
    """Whether the database at ``url`` (a SQLAlchemy URL) has locks to share."""
    return _dialect(url) in ("postgresql", "postgres", "mysql", "mariadb")


@contextlib.contextmanager
def holding(url: str, name: str) -> Iterator[None]:
    """Hold the lock ``name`` of the database at ``url``, waiting for it as long as it takes,
    on a connection of its own: closing it releases the lock."""
    import sqlalchemy

    digest = hashlib.sha256(f"specrun:{name}".encode()).digest()
    with _engine(url).connect() as connection:
        if _dialect(url) in ("postgresql", "postgres"):
            key = int.from_bytes(digest[:8], "big", signed=True)
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        else:  # MySQL's names are at most 64 characters
            connection.execute(
                sqlalchemy.text("SELECT GET_LOCK(:name, :wait)"), {"name": f"specrun:{digest.hex()[:48]}", "wait": _FOREVER_S}
            )
        yield


@functools.cache
def _engine(url: str) -> sqlalchemy.engine.Engine:
    import sqlalchemy

    # No pool: a connection put back would keep its session, and so the lock, alive.
    return sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
