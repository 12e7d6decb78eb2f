"""The live-workers registry, shared by the SQLite and PostgreSQL backends: each running worker
keeps one row (name, host, pid, the tasks it has registered, the queues it serves, its last
heartbeat and when the row expires), so ``stats``, the dashboard and ``/metrics`` can tell which
ready jobs nobody serves.

A worker writes its row when it starts and again with its heartbeats (one upsert per beat,
never per job), and deletes it when it stops; a worker killed without stopping counts as gone
once its row's ``expires_at`` passed (a few lease intervals). Rows long expired are deleted by
the next worker's write.

Its table is a schema component of its own (``quart_jobs_workers``), migrated apart from the
job table's (each dialect's ``schema.py``). Every statement is written once and rendered per
dialect (:func:`~.dialect.render`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Sequence
from typing import Any

from ...models import WorkerRecord
from .dialect import render

#: Seconds a row is kept past its expiry before a worker's write deletes it.
FORGET_AFTER = 3600.0

_COLUMNS = "name, host, pid, tasks, queues, concurrency, started_at, seen_at, expires_at"

# Write (or refresh) one worker's row; its start time stays the first one written.
UPSERT = (
    f"INSERT INTO qj_workers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET tasks = excluded.tasks, queues = excluded.queues, "
    "concurrency = excluded.concurrency, seen_at = excluded.seen_at, "
    "expires_at = excluded.expires_at"
)
# Rows of workers gone long ago (through the expiry index; usually none).
FORGET = "DELETE FROM qj_workers WHERE expires_at < ?"
REMOVE = "DELETE FROM qj_workers WHERE name = ?"
LIVE = f"SELECT {_COLUMNS} FROM qj_workers WHERE expires_at >= ? ORDER BY name"


def statements(dialect: str) -> dict[str, str]:
    """The registry's statements for ``sqlite`` or ``postgresql``."""
    texts = {"upsert": UPSERT, "forget": FORGET, "remove": REMOVE, "live": LIVE}
    return {name: render(text, dialect) for name, text in texts.items()}


def upsert_params(worker: WorkerRecord, offset: float = 0.0) -> tuple[Any, ...]:
    """:data:`UPSERT`'s parameters; ``offset`` moves the worker's times onto the store's clock."""
    return (
        worker.name,
        worker.host,
        worker.pid,
        json.dumps(list(worker.tasks), separators=(",", ":")),
        None if worker.queues is None else json.dumps(list(worker.queues), separators=(",", ":")),
        worker.concurrency,
        worker.started_at + offset,
        worker.seen_at + offset,
        worker.expires_at + offset,
    )


def worker_from_row(row: Sequence[Any], offset: float = 0.0) -> WorkerRecord:
    """A :class:`WorkerRecord` from a :data:`LIVE` row; ``offset`` (the store's clock minus the
    caller's) is taken off its times."""
    return WorkerRecord(
        name=str(row[0]),
        host=str(row[1]),
        pid=int(row[2]),
        tasks=tuple(json.loads(row[3])),
        queues=None if row[4] is None else tuple(json.loads(row[4])),
        concurrency=int(row[5]),
        started_at=float(row[6]) - offset,
        seen_at=float(row[7]) - offset,
        expires_at=float(row[8]) - offset,
    )


# What waits, cheaply: the (queue, priority, task) triples that have ready jobs, by a skip scan
# of the fair claim's index of ready jobs (``qj_jobs_fair``: queue, priority, task, ...): a few
# seeks per triple, however many jobs each holds (:func:`skip_scan`). Each seek fixes a prefix
# with equalities and moves one column on (a row-value ``>`` is not a seek on SQLite).
_READY = "FROM qj_jobs{fair} WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NULL"
# Ready jobs with a rate key have their own index, in the same (queue, priority, task) order.
_RATED = "FROM qj_jobs{rated} WHERE state = 'queued' AND tag IS NOT NULL AND rate_key IS NOT NULL"


def _seeks(ready: str) -> dict[str, str]:
    return {
        "first": f"SELECT queue, priority, task {ready} ORDER BY queue, priority, task LIMIT 1",
        "next_task": (
            f"SELECT task {ready} AND queue = ? AND priority = ? AND task > ? ORDER BY task LIMIT 1"
        ),
        "next_priority": (
            f"SELECT priority, task {ready} AND queue = ? AND priority > ? "
            "ORDER BY priority, task LIMIT 1"
        ),
        "next_queue": (
            f"SELECT queue, priority, task {ready} AND queue > ? "
            "ORDER BY queue, priority, task LIMIT 1"
        ),
        # The ready jobs of one triple: a count over its range of the index (only asked for
        # the triples nobody serves).
        "count": f"SELECT COUNT(*) {ready} AND queue = ? AND priority = ? AND task = ?",
    }


#: The seeks over jobs without a rate key, then (names prefixed :data:`RATED`) with one.
RATED = "rated_"
READY_SEEKS = {**_seeks(_READY), **{RATED + k: v for k, v in _seeks(_RATED).items()}}

Kind = tuple[str, int, str]
#: A seek :func:`skip_scan` asks for (a key of :func:`ready_statements`, its parameters).
Seek = tuple[str, tuple[Any, ...]]


def ready_statements(dialect: str) -> dict[str, str]:
    """:data:`READY_SEEKS` for ``dialect``."""
    return {name: render(text, dialect) for name, text in READY_SEEKS.items()}


def skip_scan(prefix: str = "") -> Generator[Seek, Sequence[Any] | None, set[Kind]]:
    """The skip scan, written once for both backends: it yields the seeks to run, is sent
    each one's row (or ``None``), and returns the triples found. A backend drives it with its
    own connection (:func:`drive`). ``prefix`` :data:`RATED` scans the jobs with a rate key."""
    kinds: set[Kind] = set()
    row = yield (prefix + "first", ())
    while row is not None:
        kind = (str(row[0]), int(row[1]), str(row[2]))
        queue, priority = kind[0], kind[1]
        kinds.add(kind)
        found = yield (prefix + "next_task", kind)
        if found is not None:
            row = (queue, priority, found[0])
            continue
        found = yield (prefix + "next_priority", (queue, priority))
        if found is not None:
            row = (queue, found[0], found[1])
            continue
        row = yield (prefix + "next_queue", (queue,))
    return kinds


def drive(
    scan: Generator[Seek, Sequence[Any] | None, set[Kind]],
    fetchone: Callable[[str, tuple[Any, ...]], Sequence[Any] | None],
) -> set[Kind]:
    """Run :func:`skip_scan` with a synchronous ``fetchone(name, params)``."""
    try:
        seek = next(scan)
        while True:
            seek = scan.send(fetchone(*seek))
    except StopIteration as done:
        kinds: set[Kind] = done.value
        return kinds
