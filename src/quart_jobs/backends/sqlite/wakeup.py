"""Wake-ups between the processes that share one SQLite file: UNIX datagram sockets.

A process that subscribes binds a datagram socket in a directory beside the database,
``<database>.wakeup/`` (mode 0700), one socket per kind of event it listens for:
``r-<pid>-<random>.sock`` for "jobs are ready" (workers) and ``f-<pid>-<random>.sock`` for
"job N finished" (waiters). When ``<database>.wakeup/<name>`` would pass the 107 bytes a socket
address holds, the directory is ``/tmp/quart-jobs-<hash of the database's real path>/``
instead: every process derives the same place from the same file.

After a commit that makes jobs ready (an enqueue, a retry, a requeue) or ends jobs, the
committing process sends one small datagram to each socket of that kind: at most one per kind
per turn of the event loop, however many jobs the group commit held. The listing of the
directory is cached for :data:`RELIST_SECONDS` and refreshed after a send error. Sends never
block and never fail the commit: a socket that refuses (its process died) is unlinked, a full
one is skipped ("ready") or tried again shortly ("finished"). Listening is ``loop.add_reader``
(no thread). Subscribers in the committing process itself are called directly.

When the directory cannot be made or used (a read-only file system, a directory owned by
someone else, permissions), the process logs it once and listens for nothing: workers then find
new jobs by polling, as without this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from ..events import FinishedCallback, ReadyCallback, Subscribers

log = logging.getLogger("quart_jobs.sqlite")

#: How long a listing of the socket directory is trusted before the next send lists it again.
RELIST_SECONDS = 0.1
#: A socket address holds 108 bytes, the last a NUL.
MAX_SOCKET_PATH = 107
#: Room kept for a socket's own name (``f-<pid>-<8 hex>.sock``).
NAME_ROOM = 32
#: Job ids per "finished" datagram.
IDS_PER_DATAGRAM = 500
#: Tries of a "finished" datagram that met a full receiver queue, a few milliseconds apart.
FINISHED_TRIES = 3
RETRY_SECONDS = 0.005

READY, FINISHED = "r", "f"


def wakeup_directory(database: Path) -> Path:
    """Where the sockets of the processes sharing ``database`` live."""
    real = Path(os.path.realpath(database))
    beside = real.with_name(real.name + ".wakeup")
    if len(os.fsencode(beside)) + NAME_ROOM <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"quart-jobs-{digest}"


class Wakeup:
    """The wake-ups of one process for one SQLite database."""

    def __init__(self, database: Path) -> None:
        self.directory = wakeup_directory(database)
        self.subscribers = Subscribers()
        self._listening: dict[str, tuple[socket.socket, Path, asyncio.AbstractEventLoop]] = {}
        self._sender: socket.socket | None = None
        self._peers: dict[str, list[Path]] = {READY: [], FINISHED: []}
        self._listed_at = -RELIST_SECONDS
        self._pending_ready = False
        self._pending_finished: list[int] = []
        self._retries: list[tuple[Path, bytes, int]] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        self._disabled_reason: str | None = None

    # --- subscriptions -----------------------------------------------------------------------

    def subscribe_ready(self, callback: ReadyCallback) -> None:
        self.subscribers.add_ready(callback)
        self._listen(READY)

    def unsubscribe_ready(self, callback: ReadyCallback) -> None:
        self.subscribers.remove_ready(callback)
        if not self.subscribers.ready:
            self._stop_listening(READY)

    def subscribe_finished(self, callback: FinishedCallback) -> None:
        self.subscribers.add_finished(callback)
        self._listen(FINISHED)

    def unsubscribe_finished(self, callback: FinishedCallback) -> None:
        self.subscribers.remove_finished(callback)
        if not self.subscribers.finished:
            self._stop_listening(FINISHED)

    @property
    def listening(self) -> list[Path]:
        """The sockets this process listens on (for diagnostics and tests)."""
        return [path for _, path, _ in self._listening.values()]

    def close(self) -> None:
        """Send what is still pending, stop listening, and close the sockets: nothing is sent
        after this (a flush still scheduled on the loop finds nothing to do)."""
        if self._pending_ready or self._pending_finished:
            self._flush()
        self._retries = []
        for kind in list(self._listening):
            self._stop_listening(kind)
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    # --- announcing --------------------------------------------------------------------------

    def jobs_ready(self) -> None:
        """Jobs became ready (or will at a later ``run_at``): wake the workers."""
        self._pending_ready = True
        self._schedule()

    def jobs_finished(self, job_ids: Iterable[int]) -> None:
        """These jobs reached an end state: wake whoever waits for them."""
        before = len(self._pending_finished)
        self._pending_finished.extend(job_ids)
        if len(self._pending_finished) > before:
            self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what this turn of the event loop announced: one datagram per socket and kind."""
        self._flush_loop = None
        ready, self._pending_ready = self._pending_ready, False
        finished, self._pending_finished = self._pending_finished, []
        retries, self._retries = self._retries, []
        if not (ready or finished or retries):
            return  # flushed already (by close)
        if ready:
            self.subscribers.call_ready()
        if finished:
            self.subscribers.call_finished(finished)
        peers = self._current_peers()
        if ready:
            for path in peers[READY]:
                self._send(path, READY.encode())
        if finished:
            for start in range(0, len(finished), IDS_PER_DATAGRAM):
                chunk = finished[start : start + IDS_PER_DATAGRAM]
                data = (FINISHED + ",".join(map(str, chunk))).encode()
                for path in peers[FINISHED]:
                    self._send(path, data, tries=FINISHED_TRIES)
        for path, data, tries in retries:
            self._send(path, data, tries=tries)
        if self._retries:
            asyncio.get_running_loop().call_later(RETRY_SECONDS, self._flush_retries)

    def _flush_retries(self) -> None:
        if self._flush_loop is None and self._retries:
            self._flush()

    def _current_peers(self) -> dict[str, list[Path]]:
        now = time.monotonic()
        if now - self._listed_at < RELIST_SECONDS:
            return self._peers
        self._listed_at = now
        own = {path.name for path in self.listening}
        peers: dict[str, list[Path]] = {READY: [], FINISHED: []}
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.endswith(".sock") and name not in own and name[:2] in ("r-", "f-"):
                        peers[name[0]].append(self.directory / name)
        except OSError:
            pass  # no directory yet (nobody listens), or not ours to read: nobody to wake
        self._peers = peers
        return peers

    def _send(self, path: Path, data: bytes, *, tries: int = 1) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        try:
            self._sender.sendto(data, os.fsencode(path))
        except (BlockingIOError, InterruptedError):
            if tries > 1:  # the receiver's queue is full: it is awake already; try again soon
                self._retries.append((path, data, tries - 1))
        except OSError as exc:
            self._listed_at = -RELIST_SECONDS  # list again at the next send
            if exc.errno == errno.ECONNREFUSED:  # its process is gone: clean up after it
                with contextlib.suppress(OSError):
                    path.unlink()
                log.debug("removed the stale wake-up socket %s", path)
            elif exc.errno != errno.ENOENT:
                log.debug("wake-up to %s not sent: %s", path, exc)

    # --- listening ---------------------------------------------------------------------------

    def _listen(self, kind: str) -> None:
        if kind in self._listening or self._disabled_reason is not None:
            return
        loop = asyncio.get_running_loop()
        path = self.directory / f"{kind}-{os.getpid()}-{secrets.token_hex(4)}.sock"
        try:
            self._prepare_directory()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind(os.fsencode(path))
            except BaseException:
                sock.close()
                raise
        except OSError as exc:
            self._disable(str(exc))
            return
        self._listening[kind] = (sock, path, loop)
        loop.add_reader(sock.fileno(), self._readable, sock)
        self._listed_at = -RELIST_SECONDS  # our own name is excluded from the next listing

    def _prepare_directory(self) -> None:
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.directory, 0o700)
        info = os.lstat(self.directory)
        if not stat.S_ISDIR(info.st_mode):
            raise OSError(f"{self.directory} is not a directory")
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise OSError(
                f"{self.directory} belongs to another user or others may write to it "
                f"(mode {stat.filemode(info.st_mode)})"
            )

    def _disable(self, reason: str) -> None:
        self._disabled_reason = reason
        log.info(
            "no wake-ups between processes for %s (%s); workers find new jobs by polling",
            self.directory,
            reason,
        )

    def _stop_listening(self, kind: str) -> None:
        entry = self._listening.pop(kind, None)
        if entry is None:
            return
        sock, path, loop = entry
        if not loop.is_closed():
            loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(OSError):
            path.unlink()

    def _readable(self, sock: socket.socket) -> None:
        ready = False
        finished: list[int] = []
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("wake-up socket read failed: %s", exc)
                break
            if data == READY.encode():
                ready = True
            elif data.startswith(FINISHED.encode()):
                finished.extend(int(part) for part in data[1:].split(b",") if part.isdigit())
        if ready:
            self.subscribers.call_ready()
        if finished:
            self.subscribers.call_finished(dict.fromkeys(finished))
