"""Schema bookkeeping, the same on both SQL backends: one row per component with the number of
its migration scripts applied. Each dialect's scripts are in its ``schema.py``."""

from __future__ import annotations

#: The components of the library's own tables; applications add their own beside them.
JOBS = "quart_jobs"
OPERATOR = "quart_jobs_operator"
WORKERS = "quart_jobs_workers"

SCHEMA_TABLE = (
    "CREATE TABLE IF NOT EXISTS qj_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)
SCHEMA_VERSION = "SELECT version FROM qj_schema WHERE component = ?"
SCHEMA_SET_VERSION = (
    "INSERT INTO qj_schema (component, version) VALUES (?, ?) "
    "ON CONFLICT (component) DO UPDATE SET version = excluded.version"
)


def too_new(component: str, current: int, known: int) -> str:
    """The message of :class:`~quart_jobs.errors.SchemaTooNew`."""
    return (
        f"the database's {component} schema is version {current}, newer than this code "
        f"knows ({known}); upgrade quart-jobs or point DATABASE_URL at another database"
    )
