"""Serving the app under uvicorn in this process (``SERVER=uvicorn``, the default), with
graceful SIGTERM/SIGINT.

W3 (docs/benchmarks.md) measured the same app at about 1.45x Hypercorn's requests/s under
uvicorn with uvloop and httptools, with half the p99. Like :mod:`.server`, not the server's
CLI: the listening socket is bound *before* the lifespan starts the embedded worker
(:func:`order_service.server.bind_socket`), the signals only ask the server to stop (uvicorn's
own handlers would re-raise the signal after the drain and turn exit 0 into a signal death),
and a lifespan start-up failure comes back as an exception naming its cause.

On the signal uvicorn stops accepting, lets in-flight requests finish (up to
``SHUTDOWN_TIMEOUT``), then runs the app's shutdown, which drains the embedded worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any

import uvicorn
from quart import Quart

from .config import Settings
from .service import STOPPING_KEY
from .supervisor import unblock_stop_signals

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # serve_until_signal owns SIGTERM/SIGINT


class _LifespanFailure:
    """The ASGI app, remembering why its lifespan start-up failed (uvicorn only logs it)."""

    def __init__(self, app: Quart) -> None:
        self.app = app
        self.message: str | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)  # type: ignore[arg-type]
            return

        async def spy(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.message = str(message.get("message") or "the application did not start")
            await send(message)

        await self.app(scope, receive, spy)  # type: ignore[arg-type]


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (uvicorn's own choice), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve_until_signal(app: Quart, settings: Settings, sock: socket.socket) -> None:
    """Serve on the already bound ``sock`` until SIGTERM/SIGINT."""
    wrapped = _LifespanFailure(app)
    config = uvicorn.Config(
        wrapped,
        lifespan="on",
        http="auto",  # httptools when installed
        access_log=False,
        # X-Forwarded-* are the app's to believe or not (TRUSTED_PROXIES), never the server's.
        proxy_headers=False,
        server_header=False,
        log_config=None,  # the service's own logging (logs.setup_logging)
        log_level=logging.WARNING,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=int(settings.shutdown_timeout) + 1,
    )
    server = _Server(config)
    stop = asyncio.Event()
    app.extensions[STOPPING_KEY] = stop  # long-polling requests end when it is set

    def on_signal() -> None:
        stop.set()
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    unblock_stop_signals()  # a web process of a group starts with them blocked
    try:
        await server.serve(sockets=[sock])
    except SystemExit:  # uvicorn's answer to a failed lifespan start-up
        raise RuntimeError(wrapped.message or "the application did not start") from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if not server.started:
        raise RuntimeError(wrapped.message or "the application did not start")
