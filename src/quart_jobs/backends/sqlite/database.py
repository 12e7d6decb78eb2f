"""The application's tables in the jobs' SQLite database: written in the writer thread's group
commits, read on the reader connections, migrated with the jobs' version bookkeeping."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..database import AppDatabase
from ..running import in_job
from .readers import Readers
from .schema import migrate_component
from .writer import Writer

T = TypeVar("T")


class SQLiteDatabase(AppDatabase):
    """The jobs' SQLite database, for the application's own tables (``jobs.database``)."""

    dialect = "sqlite"
    placeholder = "?"

    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def write(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(conn)`` in the process's next group-commit transaction; return its value
        once committed. If it raises, nothing it wrote is kept and the exception reaches the
        caller. Keep it short (no network calls): it runs on the one writer thread."""
        return await self._writer.run(func, urgent=in_job())

    async def read(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``func(conn)`` on a reader connection (a consistent snapshot per statement)."""
        return await self._readers.run(func)

    async def migrate(
        self,
        component: str,
        migrations: Sequence[str],
        *,
        then: Callable[[sqlite3.Connection, int], None] | None = None,
    ) -> None:
        """Apply the scripts of ``migrations`` that ``component`` lacks, in order, in one
        transaction; then, in the same transaction, ``then(conn, version)`` with the version the
        component had before (0: none yet), to move data the new tables take over.
        :class:`~quart_jobs.errors.SchemaTooNew` when the database has more scripts applied
        than ``migrations`` holds (a newer release of the application wrote it)."""

        def run(conn: sqlite3.Connection) -> None:
            before = migrate_component(conn, component, migrations)
            if then is not None:
                then(conn, before)

        await self._writer.run(run)
