"""The store of a :class:`~quart_jobs.Jobs`: named by a URL (or given as a
:class:`~quart_jobs.backends.Backend`), made from it when first used, opened once by
``jobs.open()`` and closed by ``jobs.close()``; until it is opened, the Quart extension may
point it at another URL (from ``app.config``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from .backends import Backend, backend_from_url
from .errors import ConfigurationError


class StoreHandle:
    """A store's URL and options, and the backend made from them (:attr:`backend`)."""

    def __init__(self, url: str | Backend, options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.options = options or {}
        self._backend: Backend | None = url if isinstance(url, Backend) else None
        self.opened = False

    def configure(self, url: str | Backend, options: dict[str, Any] | None) -> None:
        """Point at ``url`` (and ``options``, when given) instead; only before :meth:`open`."""
        if self.opened:
            raise ConfigurationError("configure() must be called before the jobs store is opened")
        self.url = url
        self._backend = url if isinstance(url, Backend) else None
        if options is not None:
            self.options = options

    @property
    def backend(self) -> Backend:
        """The store, created from the URL on first use (opened by :meth:`open`)."""
        if self._backend is None:
            assert isinstance(self.url, str)
            self._backend = backend_from_url(self.url, **self.options)
        return self._backend

    async def open(self) -> None:
        if not self.opened:
            await self.backend.open()
            self.opened = True

    async def close(self) -> None:
        if self.opened:
            await self.backend.close()
            self.opened = False

    @contextlib.asynccontextmanager
    async def opened_alone(self) -> AsyncIterator[Backend]:
        """The backend opened for the block and closed after it, whether or not :meth:`open`
        was called."""
        await self.backend.open()
        try:
            yield self.backend
        finally:
            await self.backend.close()
