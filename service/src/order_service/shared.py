"""Limits kept for a whole group of web processes (``WEB_PROCESSES``): the per-customer request
limit and the admin's login throttling count every process's requests, not each one's own.

The state is a file of fixed-size records that every process of the group maps into its memory
(:class:`SlotFile`); an operation holds an exclusive ``flock`` on the file for the few
microseconds it reads and writes one record, so no write to disk, no server and no round trip
is on a request's path. The clock is ``time.monotonic`` (``CLOCK_MONOTONIC``: one clock for
every process of the machine). The supervisor makes a fresh directory for the group and names it
in :data:`GROUP_DIR_ENV`; a single process keeps these limits in its own memory.

Memory is bounded as in one process: a record lives in one of ``probe`` slots after its key's
hash; a key that finds none free takes the least recently used of them (its owner starts afresh,
as a bucket evicted from a full :class:`~order_service.ratelimit.RateLimiter` does).
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import secrets
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from quart_jobs.admin.clients import FailureThrottle

from .ratelimit import Decision, RateLimiter, spend

#: The directory of a group's shared limits, set by the supervisor for its web processes.
GROUP_DIR_ENV = "ORDERS_GROUP_DIR"
SLOTS = 1 << 16
PROBE = 16
_HEADER = struct.Struct("<Qd")  # the key's hash (0: a free slot), when it was last used
#: The file begins with a random key for the hash (written by the first process to open it):
#: a client cannot choose addresses that meet in one slot's window to evict each other.
SECRET_BYTES = 16
PREAMBLE = 64

Change = Callable[[tuple[float, ...] | None], Sequence[float] | None]


class SlotFile:
    """Records of ``fields`` floats keyed by strings, shared by the processes mapping ``path``."""

    def __init__(self, path: Path, *, fields: int, slots: int = SLOTS, probe: int = PROBE) -> None:
        self.path = path
        self.slots = slots
        self.probe = min(probe, slots)
        self._record = struct.Struct(f"<Qd{fields}d")
        size = PREAMBLE + self._record.size * slots
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with self._locked():
                if os.fstat(self._fd).st_size < size:
                    os.ftruncate(self._fd, size)  # zeros: every slot free
                self._map = mmap.mmap(self._fd, size)
                if not any(self._map[:SECRET_BYTES]):
                    self._map[:SECRET_BYTES] = secrets.token_bytes(SECRET_BYTES)
                self._secret = bytes(self._map[:SECRET_BYTES])
        except BaseException:
            os.close(self._fd)
            raise

    def _locked(self) -> _Lock:
        return _Lock(self._fd)

    def _hash(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=8, key=self._secret).digest()
        return int.from_bytes(digest, "little")

    def update(self, key: str, now: float, change: Change) -> Sequence[float] | None:
        """``change(values)`` under the file's lock, ``values`` being ``key``'s record (``None``
        if it has none); what it returns is stored (``None``: the record is dropped) and
        returned."""
        hashed = self._hash(key)
        start = hashed % self.slots
        wanted = hashed | 1 << 63  # never 0, the mark of a free slot
        size = self._record.size
        with self._locked():
            free = oldest = None
            oldest_used = math.inf
            for step in range(self.probe):
                slot = (start + step) % self.slots
                offset = PREAMBLE + slot * size
                owner, used = _HEADER.unpack_from(self._map, offset)
                if owner == wanted:
                    found = self._record.unpack_from(self._map, offset)[2:]
                    return self._store(offset, wanted, now, change(found))
                if owner == 0:
                    if free is None:
                        free = offset
                elif used < oldest_used:
                    oldest, oldest_used = offset, used
            target = free if free is not None else oldest
            assert target is not None
            values = change(None)
            if values is None:
                return None
            return self._store(target, wanted, now, values)

    def _store(
        self, offset: int, owner: int, now: float, values: Sequence[float] | None
    ) -> Sequence[float] | None:
        if values is None:
            self._map[offset : offset + self._record.size] = bytes(self._record.size)
        else:
            self._record.pack_into(self._map, offset, owner, now, *values)
        return values

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class _Lock:
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


class SharedRateLimiter(RateLimiter):
    """:class:`RateLimiter`'s token buckets, one per customer for the whole group."""

    def __init__(
        self, path: Path, rate: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, clock=clock)
        self._file = SlotFile(path, fields=2)  # tokens, updated

    def take(self, key: str, *, vip: bool = False) -> Decision:
        if not self.enabled:
            return Decision(True)
        rate, burst = self.limits(vip)
        now = self._clock()
        decision = Decision(True)

        def change(values: tuple[float, ...] | None) -> tuple[float, float]:
            nonlocal decision
            tokens = burst if values is None else min(burst, values[0] + (now - values[1]) * rate)
            tokens, decision = spend(tokens, rate)
            return tokens, now

        self._file.update(key, now, change)
        return decision

    def close(self) -> None:
        self._file.close()


class SharedFailureThrottle(FailureThrottle):
    """:class:`FailureThrottle` counting every process's failures: a record per client holds
    the times of its last ``limit`` failures, oldest first (``-inf``: none)."""

    def __init__(
        self,
        path: Path,
        limit: int = 10,
        window: float = 60.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(limit, window, monotonic=monotonic)
        self._file = SlotFile(path, fields=limit)

    def retry_after(self, client: str) -> int | None:
        now = self._monotonic()
        wait: int | None = None

        def change(values: tuple[float, ...] | None) -> tuple[float, ...] | None:
            nonlocal wait
            if values is None:
                return None
            if values[0] > now - self.window:  # the oldest of the last `limit` is recent
                wait = max(1, math.ceil(values[0] + self.window - now))
            return values

        self._file.update(client, now, change)
        return wait

    def failed(self, client: str) -> None:
        now = self._monotonic()

        def change(values: tuple[float, ...] | None) -> tuple[float, ...]:
            return (*(values or (-math.inf,) * self.limit)[1:], now)

        self._file.update(client, now, change)

    def close(self) -> None:
        self._file.close()


def group_dir() -> Path | None:
    """The group's shared directory when this process is one of a group, else ``None``."""
    value = os.environ.get(GROUP_DIR_ENV)
    return Path(value) if value else None
