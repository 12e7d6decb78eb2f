"""The application's own tables, kept in the jobs' database: what an application reaches as
:attr:`Jobs.database <quart_jobs.Jobs.database>` to create, migrate, read and write them
outside a :meth:`Jobs.transaction <quart_jobs.Jobs.transaction>`.

Each SQL backend has one (``backends/sqlite/database.py``: :class:`SQLiteDatabase`,
``backends/postgres/database.py``: :class:`PostgresDatabase`); ``memory://`` has none.
Migrations of a component (a name of the application's own, say ``orders``) are versioned
with the jobs' bookkeeping, apart from the jobs' tables: each process that starts applies the
scripts the database lacks, once, even when several start together.
"""

from __future__ import annotations


class AppDatabase:
    """What both dialects' databases share (see :class:`SQLiteDatabase` and
    :class:`PostgresDatabase` for their methods)."""

    #: ``sqlite`` or ``postgresql``: the SQL the application writes.
    dialect: str = ""
    #: The parameter placeholder of :attr:`dialect`: ``?`` (SQLite), ``%s`` (PostgreSQL).
    placeholder: str = "?"
