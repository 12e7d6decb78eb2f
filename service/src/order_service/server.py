"""Serving the app under Hypercorn in this process, with graceful SIGTERM/SIGINT.

Not Hypercorn's CLI: with its default of one child worker, a SIGTERM sent to the process
group kills the child at once and skips the drain (STACK.md). Here the signal only sets an
event; Hypercorn stops accepting, the app's shutdown drains the workers, and the exit code
tells whether start-up worked.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from .config import Settings

log = logging.getLogger("orders")


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


async def serve_until_signal(app: Quart, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await serve(app, hypercorn_config(settings), shutdown_trigger=stop.wait)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
