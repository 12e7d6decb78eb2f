"""Serving the app under Hypercorn in this process, with graceful SIGTERM/SIGINT.

Not Hypercorn's CLI: with its default of one child worker, a SIGTERM sent to the process
group kills the child at once and skips the drain. Here the signal only sets an
event; Hypercorn stops accepting, the app's shutdown drains the workers, and the exit code
tells whether start-up worked.

The listening socket is bound *before* the app's lifespan starts (:func:`bind`): Hypercorn
would otherwise run the start-up (which starts the embedded worker, which claims jobs) and
only then find the port taken.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from quart import Quart

from .config import Settings
from .service import STOPPING_KEY
from .supervisor import unblock_stop_signals

log = logging.getLogger("orders")


class BindError(OSError):
    """The address cannot be listened on; the message names HOST:PORT and the reason."""


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    # The app's own drain takes up to SHUTDOWN_TIMEOUT; give the lifespan room for it.
    config.shutdown_timeout = settings.shutdown_timeout + 15
    config.graceful_timeout = 3
    config.keep_alive_timeout = 30
    return config


def bind(config: Config, settings: Settings) -> Sockets:
    """Bind the listening sockets now, or raise :class:`BindError` naming HOST:PORT."""
    try:
        return config.create_sockets()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise BindError(
            f"HOST:PORT={settings.host}:{settings.port}: cannot listen there: {reason}"
            + (
                "; another process uses it, choose another PORT"
                if exc.errno == errno.EADDRINUSE
                else ""
            )
        ) from exc


async def serve_until_signal(app: Quart, config: Config, sockets: Sockets) -> None:
    """Serve on the already bound ``sockets`` until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    app.extensions[STOPPING_KEY] = stop  # long-polling requests end when it is set
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    unblock_stop_signals()  # a web process of a group starts with them blocked
    try:
        await worker_serve(
            wrap_app(app, config.wsgi_max_body_size, None),
            config,
            sockets=sockets,
            shutdown_trigger=stop.wait,
        )
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
