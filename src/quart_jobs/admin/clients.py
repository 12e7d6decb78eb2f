"""Who is on the other end of an admin request: the client address and whether it came over
HTTPS, believing ``X-Forwarded-For``/``X-Forwarded-Proto`` only from declared proxies; and the
per-client throttle of failed logins.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable, Iterable

from quart import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (``"127.0.0.1, 10.0.0.0/8"`` or a list); ``ValueError`` names a
    bad entry."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in parts if p.strip())


class ClientView:
    """Reads the client's address and scheme, trusting forwarded headers only from a peer in
    ``trusted`` (the reverse proxies the operator declared)."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: str | None) -> bool:
        if not address or not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def via_trusted_proxy(self, request: Request) -> bool:
        return self._is_trusted(request.remote_addr)

    def is_https(self, request: Request) -> bool:
        if request.scheme in ("https", "wss"):
            return True
        if not self.via_trusted_proxy(request):
            return False
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        return proto == "https"

    def address(self, request: Request) -> str:
        """The client: the peer, or, behind trusted proxies, the nearest untrusted hop of
        ``X-Forwarded-For``."""
        peer = request.remote_addr or "unknown"
        if not self.via_trusted_proxy(request):
            return peer
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._is_trusted(hop):
                return hop[:64]
        return peer


class FailureThrottle:
    """At most ``limit`` failed attempts per client in any ``window`` seconds; past it the
    client waits (:meth:`retry_after`) whatever it sends. Kept in this process's memory."""

    def __init__(
        self,
        limit: int = 10,
        window: float = 60.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or ``None`` when it may now."""
        now = self._monotonic()
        times = self._recent(client, now)
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        now = self._monotonic()
        if client not in self._failures and len(self._failures) >= self._max_clients:
            # Memory stays bounded under a spray of addresses: forget the stalest client.
            oldest = min(self._failures, key=lambda c: self._failures[c][-1])
            del self._failures[oldest]
        self._recent(client, now)
        self._failures.setdefault(client, deque()).append(now)
