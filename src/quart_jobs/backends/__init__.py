"""Storage backends, chosen by URL scheme; drivers are imported only when used."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .base import Backend, Heartbeat, Outcome

__all__ = ["DEFAULT_DATABASE_URL", "Backend", "Heartbeat", "Outcome", "backend_from_url"]

#: The store of a ``Jobs()`` given no URL: a SQLite file under ``var/``.
DEFAULT_DATABASE_URL = "sqlite:///var/jobs.sqlite3"


def backend_from_url(url: str, **options: Any) -> Backend:
    """``memory://``, ``sqlite:///path`` or ``postgresql://…``."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        from .memory.backend import MemoryBackend

        return MemoryBackend()
    if scheme == "sqlite":
        from .sqlite.backend import SQLiteBackend

        return SQLiteBackend.from_url(url, **options)
    if scheme in ("postgresql", "postgres"):
        try:
            from .postgres.backend import PostgresBackend  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigurationError(
                f"DATABASE_URL {url!r} needs the PostgreSQL driver: "
                f"pip install 'quart-jobs[postgres]' ({exc})"
            ) from None
        backend: Backend = PostgresBackend.from_url(url, **options)
        return backend
    raise ConfigurationError(
        f"DATABASE_URL {url!r} has an unknown scheme: use sqlite:///PATH, postgresql://... "
        "or memory://"
    )
