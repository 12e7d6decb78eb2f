"""The order service's settings, from the environment (the README's configuration table).

A bad value stops start-up with one line naming the setting (exit code 2).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from quart_jobs import ConfigurationError, RateLimit, parse_retention, queue_names

T = TypeVar("T")

log = logging.getLogger("orders")


class SettingError(ValueError):
    """A setting has a value the service cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///var/orders.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8000
    #: The HTTP server of ``orders serve``: uvicorn (the default: W3's fastest) or hypercorn.
    server: str = "uvicorn"
    worker_concurrency: int = 4
    embedded_workers: bool = True
    #: Web processes of ``orders serve`` on one port under one supervisor (``WEB_PROCESSES``);
    #: :data:`AUTO` (``auto``, the default): :meth:`processes` chooses.
    web_processes: int = 0
    shutdown_timeout: float = 20.0
    job_max_attempts: int = 5
    orders_demo: bool = False
    admin_token: str | None = None
    metrics_token: str | None = None
    #: Addresses or networks (comma-separated) of reverse proxies whose ``X-Forwarded-Proto``
    #: and ``X-Forwarded-For`` are believed; empty: none (the peer address is the client).
    trusted_proxies: str = ""
    max_body_bytes: int = 1_048_576
    max_queued: int = 100_000
    max_queued_per_customer: int = 10_000
    rate_limit_per_customer: float = 0.0
    #: At most this many fulfilments start per customer per period, across every process
    #: (``FULFILMENT_RATE_LIMIT``: ``5/s``, ``100/m``, ``20/5s``); ``None``: off.
    fulfilment_rate_limit: RateLimit | None = None
    log_format: str = "text"
    vip_weight: float = 9.0
    #: The queues an ``orders worker`` claims from ("a,b"); empty: every queue.
    queues: str = ""
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    sqlite_synchronous: str = "FULL"
    #: Seconds a finished job is kept (``JOB_RETENTION``: ``7d``, ``12h``, ``off``); orders are
    #: never deleted by it. ``None``: off.
    job_retention: float | None = 7 * 86400.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        if env.get("AGING_SECONDS"):
            log.warning(
                "AGING_SECONDS is no longer used and is ignored: VIP_WEIGHT sets the tiers' "
                "shares, and no order waits forever"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[f.name] = _PARSERS.get(f.name, _str)(name, raw)
        settings = replace(cls(), **values)
        if settings.orders_demo and settings.admin_token is None:
            settings = replace(settings, admin_token=DEMO_ADMIN_TOKEN)
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        settings.check()
        return settings

    def processes(self) -> int:
        """How many web processes ``orders serve`` runs. ``auto``: on SQLite one per CPU this
        process may use, at most :data:`MAX_AUTO_PROCESSES` (measured on 2 cores,
        docs/deployment.md: two processes accepted a quarter more orders and completed twice as
        many during a flood; the file has one write lock, which more processes only share); on
        PostgreSQL 1 (a second process measured no faster: the server's commits are the
        limit); ``memory://`` lives in one process."""
        if self.web_processes != AUTO:
            return self.web_processes
        if self.database_url.split(":", 1)[0].lower() != "sqlite":
            return 1
        cpus = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")  # not on macOS
            else os.cpu_count() or 1
        )
        return max(1, min(MAX_AUTO_PROCESSES, cpus))

    def check(self) -> None:
        scheme = self.database_url.split(":", 1)[0].lower()
        if scheme not in ("sqlite", "postgresql", "postgres", "memory"):
            raise SettingError(
                f"DATABASE_URL={self.database_url!r}: unknown scheme {scheme!r}; "
                "use sqlite:///PATH or postgresql://..."
            )
        if not 0 < self.port < 65536:
            raise SettingError(f"PORT={self.port}: use a port between 1 and 65535")
        for name, value, low in (
            ("WORKER_CONCURRENCY", self.worker_concurrency, 1),
            ("JOB_MAX_ATTEMPTS", self.job_max_attempts, 1),
            ("MAX_BODY_BYTES", self.max_body_bytes, 1),
            ("MAX_QUEUED", self.max_queued, 1),
            ("MAX_QUEUED_PER_CUSTOMER", self.max_queued_per_customer, 1),
        ):
            if value < low:
                raise SettingError(f"{name}={value}: must be at least {low}")
        for name, number in (
            ("SHUTDOWN_TIMEOUT", self.shutdown_timeout),
            ("RATE_LIMIT_PER_CUSTOMER", self.rate_limit_per_customer),
        ):
            if number < 0:
                raise SettingError(f"{name}={number}: must not be negative")
        if not self.vip_weight >= 1:  # also refuses NaN
            raise SettingError(
                f"VIP_WEIGHT={self.vip_weight}: must be at least 1 (inf: VIP strictly first)"
            )
        if self.queues:
            try:
                queue_names(self.queues)
            except ConfigurationError as exc:
                raise SettingError(f"QUEUES={self.queues!r}: {exc}") from None
        if self.lease_seconds <= 0 or self.poll_interval <= 0:
            raise SettingError("LEASE_SECONDS and POLL_INTERVAL must be positive")
        for name, token in (
            ("ADMIN_TOKEN", self.admin_token),
            ("METRICS_TOKEN", self.metrics_token),
        ):
            if token is not None and len(token) < MIN_TOKEN_LENGTH:
                raise SettingError(
                    f"{name}: {len(token)} characters is too short to resist guessing; use at "
                    f"least {MIN_TOKEN_LENGTH} (for example: python3 -c 'import secrets; "
                    "print(secrets.token_urlsafe(24))')"
                )
        if self.web_processes != AUTO and self.web_processes < 1:
            raise SettingError(f"WEB_PROCESSES={self.web_processes}: use auto or at least 1")
        if self.web_processes > MAX_WEB_PROCESSES:
            raise SettingError(
                f"WEB_PROCESSES={self.web_processes}: use at most {MAX_WEB_PROCESSES}"
            )
        if scheme == "memory" and self.web_processes not in (1, AUTO):
            raise SettingError(
                f"WEB_PROCESSES={self.web_processes}: a memory:// database lives in one "
                "process; use 1, or a sqlite:// or postgresql:// DATABASE_URL"
            )
        self.proxy_networks()
        if self.server not in SERVERS:
            raise SettingError(f"SERVER={self.server!r}: use {' or '.join(SERVERS)}")
        if self.log_format not in ("text", "json"):
            raise SettingError(f"LOG_FORMAT={self.log_format!r}: use text or json")
        if self.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise SettingError(
                f"SQLITE_SYNCHRONOUS={self.sqlite_synchronous!r}: use NORMAL, FULL or EXTRA"
            )

    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``TRUSTED_PROXIES`` as networks (a bare address is a network of one)."""
        networks = []
        for part in self.trusted_proxies.split(","):
            if part.strip():
                try:
                    networks.append(ipaddress.ip_network(part.strip(), strict=False))
                except ValueError:
                    raise SettingError(
                        f"TRUSTED_PROXIES={self.trusted_proxies!r}: {part.strip()!r} is not an IP "
                        "address or network; use for example 127.0.0.1,10.0.0.0/8"
                    ) from None
        return tuple(networks)


#: The servers ``orders serve`` can run the app under (``SERVER``), the default first.
SERVERS = ("uvicorn", "hypercorn")

#: More web processes than this is a typo, not a plan.
MAX_WEB_PROCESSES = 256
#: ``WEB_PROCESSES=auto``: :meth:`Settings.processes` chooses.
AUTO = 0
#: ``auto`` runs at most this many web processes on SQLite: its one write lock is shared by
#: all of them; more was not measured.
MAX_AUTO_PROCESSES = 4


#: Admin and metrics tokens shorter than this are refused at start-up.
MIN_TOKEN_LENGTH = 16
#: The admin token of demo mode when ADMIN_TOKEN is not set (documented, so printed at start).
DEMO_ADMIN_TOKEN = "demo-admin-token"


def _str(name: str, raw: str) -> str:
    return raw


def _retention(name: str, raw: str) -> float | None:
    try:
        return parse_retention(raw)
    except ConfigurationError:
        raise SettingError(
            f"{name}={raw!r}: use a duration (30s, 15m, 12h, 7d, or seconds) or off"
        ) from None


def _number(kind: Callable[[str], T], *, infinite: bool = False) -> Callable[[str, str], T]:
    """A parser of ``kind``; NaN is refused, and infinity unless ``infinite`` (where it has a
    meaning, as VIP_WEIGHT's "strictly first")."""

    def parse(name: str, raw: str) -> T:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise SettingError(f"{name}={raw!r}: not a valid {kind.__name__}") from None
        if isinstance(value, float) and not (
            math.isfinite(value) or (infinite and value == math.inf)
        ):
            raise SettingError(f"{name}={raw!r}: use a finite number")
        return value

    return parse


def _rate_limit(name: str, raw: str) -> RateLimit | None:
    if raw.strip().lower() == "off":
        return None
    try:
        return RateLimit.parse(raw.strip())
    except ValueError as exc:
        detail = str(exc).split(": ", 1)[-1]  # the format, or what is out of range
        raise SettingError(f"{name}={raw!r}: {detail}") from None


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name}={raw!r}: use 1 or 0")


def _web_processes(name: str, raw: str) -> int:
    if raw.strip().lower() == "auto":
        return AUTO
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise SettingError(f"{name}={raw!r}: use auto or a number of processes of at least 1")
    return value


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "port": _number(int),
    "worker_concurrency": _number(int),
    "embedded_workers": _bool,
    "web_processes": _web_processes,
    "shutdown_timeout": _number(float),
    "job_max_attempts": _number(int),
    "orders_demo": _bool,
    "max_body_bytes": _number(int),
    "max_queued": _number(int),
    "max_queued_per_customer": _number(int),
    "rate_limit_per_customer": _number(float),
    "fulfilment_rate_limit": _rate_limit,
    "vip_weight": _number(float, infinite=True),
    "lease_seconds": _number(float),
    "poll_interval": _number(float),
    "job_retention": _retention,
}
