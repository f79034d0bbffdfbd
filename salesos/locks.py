"""One runner at a time, across worker processes and machines.

`only_one(key)` takes a PostgreSQL session advisory lock for the duration of a block: it is
released at the end, or by the database when the worker's connection goes (a killed worker
leaves no lock behind). Elsewhere (SQLite, one process in development) the block always runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import DatabaseError, connection


@contextlib.contextmanager
def only_one(key: str) -> Iterator[bool]:
    """Whether this is the only holder of `key` now, for the duration of the block."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        alone = bool(cursor.fetchone()[0])
    try:
        yield alone
    finally:
        if alone:
            # If the connection is gone, the lock went with it.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
