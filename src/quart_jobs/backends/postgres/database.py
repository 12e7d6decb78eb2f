"""The application's tables in the jobs' PostgreSQL database (and schema): transactions on the
jobs' connection pool, migrated with the jobs' version bookkeeping."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence

from ..database import AppDatabase
from .connections import Connection, Connections
from .schema import migrate_component


class PostgresDatabase(AppDatabase):
    """The jobs' PostgreSQL database, for the application's own tables (``jobs.database``)."""

    dialect = "postgresql"
    placeholder = "%s"

    def __init__(self, db: Connections) -> None:
        self._db = db

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A pooled connection (psycopg's ``AsyncConnection``, its ``search_path`` set to the
        jobs' schema) inside a transaction, committed when the block ends without an exception.
        Connection failures become :class:`~quart_jobs.errors.BackendUnavailable`; the
        application's own SQL errors (say ``UniqueViolation``) reach it unchanged."""
        return self._db.transaction()

    async def migrate(
        self,
        component: str,
        migrations: Sequence[str],
        *,
        then: Callable[[Connection, int], Awaitable[None]] | None = None,
    ) -> None:
        """Apply the scripts of ``migrations`` that ``component`` lacks, in order, in one
        transaction under the jobs' migration lock (processes starting together apply each
        once); then, in the same transaction, ``await then(conn, version)`` with the version the
        component had before (0: none yet), to move data the new tables take over.
        :class:`~quart_jobs.errors.SchemaTooNew` when the database has more scripts applied
        than ``migrations`` holds (a newer release of the application wrote it)."""
        async with self._db.transaction() as conn:
            before = await migrate_component(conn, component, migrations)
            if then is not None:
                await then(conn, before)
