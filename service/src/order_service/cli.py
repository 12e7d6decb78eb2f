"""``orders``: serve the order service, run a worker, manage customers.

Exit codes: 0 done, 1 the action failed (for example, a customer that exists), 2 a bad setting
or an unreachable database (one line on stderr naming it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import NoReturn, TypeVar

import click
from hypercorn.config import Sockets
from quart import Quart

from quart_jobs import ConfigurationError, JobsError

from .app import create_app
from .config import DEMO_ADMIN_TOKEN, SettingError, Settings
from .logs import setup_logging
from .runtime import tune_gc
from .service import DEMO_CUSTOMERS, EXTENSION_KEY, OrdersState, hash_key, new_api_key
from .store import CustomerExists, OrdersStore
from .tracing import setup_tracing, shutdown_tracing

T = TypeVar("T")
log = logging.getLogger("orders")


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **overrides)
    except SettingError as exc:
        click.echo(f"orders: configuration error: {exc}", err=True)
        sys.exit(2)


def _fail_start(settings: Settings, exc: BaseException) -> NoReturn:
    """One line naming the real cause, exit 2: the database for the store's errors, else the
    error itself (a bind error names HOST:PORT, a setting's error that setting)."""
    if isinstance(exc, JobsError) and not isinstance(exc, ConfigurationError):
        cause = f"DATABASE_URL={_redact(settings.database_url)}: {exc}"
    else:
        cause = " ".join(str(exc).split()) or type(exc).__name__
    click.echo(f"orders: cannot start: {cause}", err=True)
    sys.exit(2)


def _setup_tracing(settings: Settings) -> None:
    """Tracing as OpenTelemetry's environment variables ask (see ``tracing.py``)."""
    try:
        setup_tracing()
    except SettingError as exc:
        _fail_start(settings, exc)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


async def _preflight(app: Quart) -> None:
    """Open the store once before serving, so a bad database fails with one clear line."""
    state: OrdersState = app.extensions[EXTENSION_KEY]
    async with state.jobs:
        pass


@click.group()
def main() -> None:
    """The quart-jobs reference order service."""


@main.command()
@click.option("--host", help="Address to listen on (HOST).")
@click.option("--port", type=int, help="Port to listen on (PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the order service (under uvicorn, or SERVER=hypercorn) until SIGTERM/SIGINT."""
    settings = _settings(host=host, port=port)
    setup_logging(settings.log_format)
    _setup_tracing(settings)
    from . import server, supervisor

    # Order matters: the store (opened and migrated, no job touched), then the port, and
    # only then the lifespan that starts the embedded worker; any failure before it has
    # claimed nothing.
    app = create_app(settings)
    try:
        asyncio.run(_preflight(app))
    except (JobsError, OSError) as exc:
        _fail_start(settings, exc if isinstance(exc, JobsError) else JobsError(str(exc)))
    config = server.hypercorn_config(settings)
    try:
        sockets = server.bind(config, settings)
    except server.BindError as exc:
        _fail_start(settings, exc)
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"order service on {url}  (database {_redact(settings.database_url)})"]
    if settings.orders_demo:
        lines += [f"  demo customer {n} ({t}): API key {k}" for n, t, k in DEMO_CUSTOMERS]
    if settings.admin_token == DEMO_ADMIN_TOKEN and settings.orders_demo:
        lines.append(f"  admin token: {settings.admin_token}  (dashboard: {url}/admin/)")
    elif settings.admin_token:
        # An operator's token stays out of the output: whoever reads the logs must not learn it.
        lines.append(f"  admin: enabled with ADMIN_TOKEN (dashboard: {url}/admin/)")
    lines.append(f"  OpenAPI: {url}/openapi.json   stop: Ctrl-C")
    processes = settings.processes()
    if processes > 1:
        lines.append(f"  {processes} web processes (WEB_PROCESSES)")
    click.echo("\n".join(lines), err=True)
    if processes == 1:
        tune_gc()
        _serve_here(app, settings, sockets)
    else:
        del app  # each web process builds its own
        group = supervisor.Group(
            _web_process,
            (settings, sockets),
            processes,
            stop_timeout=settings.shutdown_timeout + 4,
        )
        with supervisor.shared_metrics(), supervisor.shared_limits():
            code = group.run()
        if code:
            sys.exit(code)
    click.echo("order service stopped", err=True)


def _serve_here(app: Quart, settings: Settings, sockets: Sockets) -> None:
    """Serve ``app`` in this process on the bound ``sockets`` until SIGTERM/SIGINT."""
    from . import server, server_uvicorn

    try:
        if settings.server == "hypercorn":
            config = server.hypercorn_config(settings)
            asyncio.run(server.serve_until_signal(app, config, sockets))
        else:
            (sock,) = sockets.insecure_sockets
            server_uvicorn.run(server_uvicorn.serve_until_signal(app, settings, sock))
    except Exception as exc:  # start-up failed inside the lifespan
        _fail_start(settings, exc)
    shutdown_tracing()  # this process's spans still buffered


def _web_process(settings: Settings, sockets: Sockets) -> None:
    """One web process of the group (:mod:`.supervisor`): the app, its server and its
    embedded worker, on the sockets the supervisor bound."""
    setup_logging(settings.log_format)
    _setup_tracing(settings)
    app = create_app(settings)
    tune_gc()
    _serve_here(app, settings, sockets)


@contextlib.asynccontextmanager
async def _started(app: Quart) -> AsyncIterator[OrdersState]:
    """The app's serving lifecycle without HTTP: store open, embedded worker per settings."""
    await app.startup()
    try:
        yield app.extensions[EXTENSION_KEY]
    finally:
        await app.shutdown()


def _run(settings: Settings, action: Callable[[OrdersState], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _started(create_app(settings)) as state:
            return await action(state)

    try:
        return asyncio.run(main())
    except JobsError as exc:
        _fail_start(settings, exc)


@main.command()
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
@click.option("--queues", help="Claim only from these queues (comma-separated; default: all).")
def worker(concurrency: int | None, queues: str | None) -> None:
    """Run a worker process only (scale-out), on the same DATABASE_URL."""
    settings = _settings(worker_concurrency=concurrency, queues=queues)
    settings = replace(settings, embedded_workers=True)
    setup_logging(settings.log_format)
    _setup_tracing(settings)
    tune_gc()

    async def until_signal(state: OrdersState) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = state.jobs.embedded
        click.echo(
            f"orders worker {worker.name if worker else '?'} on {_redact(settings.database_url)} "
            f"(concurrency {settings.worker_concurrency})",
            err=True,
        )
        if worker is None:
            await stop.wait()
        else:
            await worker.run_until(stop)
            if worker.failure is not None:
                click.echo(
                    f"orders worker: stopped after an internal failure: {worker.failure!r}",
                    err=True,
                )
                sys.exit(1)
        click.echo("stopping: running orders get SHUTDOWN_TIMEOUT to finish", err=True)

    _run(settings, until_signal)
    shutdown_tracing()
    click.echo("orders worker stopped", err=True)


@main.group()
def customer() -> None:
    """Manage customers and their API keys."""


def _store_action(action: Callable[[OrdersStore], Awaitable[T]]) -> T:
    settings = replace(_settings(), embedded_workers=False)
    return _run(settings, lambda state: action(state.require_store()))


@customer.command("add")
@click.argument("name")
@click.option("--tier", type=click.Choice(["vip", "regular"]), required=True)
def customer_add(name: str, tier: str) -> None:
    """Create a customer; its new API key is the last line printed."""
    if not name.strip() or len(name) > 64:
        raise click.BadParameter("use 1 to 64 characters", param_hint="NAME")
    api_key = new_api_key()
    try:
        _store_action(lambda store: store.add_customer(name, tier, hash_key(api_key)))
    except CustomerExists:
        click.echo(f"orders: customer {name!r} exists already (rotate its key instead)", err=True)
        sys.exit(1)
    click.echo(f"customer {name} ({tier}) created; API key (shown once):")
    click.echo(api_key)


@customer.command("list")
def customer_list() -> None:
    """Customers, their tier and whether their key is active (keys are never shown)."""
    for c in _store_action(lambda store: store.list_customers()):
        click.echo(f"{c.name}\t{c.tier}\t{'revoked' if c.revoked else 'active'}")


@customer.command("rotate")
@click.argument("name")
def customer_rotate(name: str) -> None:
    """Give a customer a new API key (the old one stops working); the key is the last line."""
    api_key = new_api_key()
    if _store_action(lambda store: store.set_key(name, hash_key(api_key))) is None:
        click.echo(f"orders: no customer named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"new API key for {name} (shown once):")
    click.echo(api_key)


@customer.command("revoke")
@click.argument("name")
def customer_revoke(name: str) -> None:
    """Revoke a customer's API key."""
    if _store_action(lambda store: store.set_key(name, None)) is None:
        click.echo(f"orders: no customer named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"API key of {name} revoked")
