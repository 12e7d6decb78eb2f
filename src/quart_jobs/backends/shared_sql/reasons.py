"""Why jobs wait, counted the same way on both SQL backends: :func:`count_waiting` is written
once as a generator of statements (like :func:`.workers.skip_scan`) that each backend drives
with its own connection (:func:`drive`, or an async loop on PostgreSQL).

Each reason is a few seeks and range counts over partial indexes, every count capped at
:data:`CAP` rows (a count that reaches it is reported "at least"):

* ``dependency``: jobs in state ``waiting``, by queue (the state index);
* ``not_due``: the ``run_at > now`` range of ``qj_jobs_due`` (queued jobs not yet tagged);
* the ready (tagged) jobs, found by the skip scan over ``qj_jobs_fair`` and ``qj_jobs_rated``
  (one seek per (queue, priority, task)): a range of a paused queue counts as ``paused``, one
  no live worker serves as ``unserved``; in the others, each rate key whose window is closed
  (its ``open_at`` is after now) counts its range of ``qj_jobs_rated`` as ``rate_limit``;
* ``concurrency``: per key at its limit (running jobs by key, from the running-keys index),
  its ready jobs whose limit is reached, from ``qj_jobs_keyed`` (entries for keyed jobs only),
  less those a reason above already holds.

Ready jobs held by none of these start at the next free slot: they are not counted. Jobs that
came due since the last claim are not tagged yet, so they are counted once a claim tags them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from ...models import JobState, Waiting, WaitReason, WorkerRecord
from . import workers as registry
from .dialect import render
from .fair import RATED, RUNNING_KEYS, UNRATED
from .pauses import PAUSED
from .rate import RATED_KEYS, rated_keys_params

#: Rows each count reads at most; a count that reaches it is "at least" that many.
CAP = 10_000
#: Rate keys read per (queue, priority, task) range at most.
KEY_CAP = 1_000

_STATEMENTS = {
    "dependency": (
        "SELECT queue, COUNT(*) FROM (SELECT queue FROM qj_jobs WHERE state = ? "
        "LIMIT ?) AS w GROUP BY queue"
    ),
    "not_due": (
        "SELECT queue, COUNT(*) FROM (SELECT queue FROM qj_jobs{due} WHERE state = 'queued' "
        "AND tag IS NULL AND run_at > ? LIMIT ?) AS d GROUP BY queue"
    ),
    "paused": PAUSED,
    "capped_count": (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM qj_jobs{{fair}} WHERE {UNRATED} "
        "AND queue = ? AND priority = ? AND task = ? LIMIT ?) AS c"
    ),
    "capped_rated_count": (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM qj_jobs{{rated}} WHERE {RATED} "
        "AND queue = ? AND priority = ? AND task = ? LIMIT ?) AS c"
    ),
    "rate_keys": RATED_KEYS + " LIMIT ?",
    "capped_key_count": (
        f"SELECT COUNT(*) FROM (SELECT 1 FROM qj_jobs{{rated}} WHERE {RATED} "
        "AND queue = ? AND priority = ? AND task = ? AND rate_key = ? LIMIT ?) AS c"
    ),
    "running_keys": RUNNING_KEYS,
    "keyed": (
        "SELECT queue, task, rate_key, COUNT(*) FROM (SELECT queue, task, rate_key "
        "FROM qj_jobs{keyed} WHERE state = 'queued' AND tag IS NOT NULL "
        "AND concurrency_key IS NOT NULL AND concurrency_key = ? AND concurrency_limit <= ? "
        "LIMIT ?) AS k GROUP BY queue, task, rate_key"
    ),
    **registry.READY_SEEKS,
}

#: A statement :func:`count_waiting` asks for (a key of :func:`statements`, its parameters);
#: it is sent back the statement's rows.
Step = tuple[str, tuple[Any, ...]]
Rows = Sequence[Sequence[Any]]


def statements(dialect: str) -> dict[str, str]:
    """The statements :func:`count_waiting` names, for ``dialect``."""
    return {name: render(text, dialect) for name, text in _STATEMENTS.items()}


def count_waiting(
    now: float, workers: Sequence[WorkerRecord], cap: int = CAP
) -> Generator[Step, Rows, Waiting]:
    """The jobs that are not starting at ``now`` (the store's clock), by queue and reason;
    ``workers``: the live workers (who serves what)."""
    counts: dict[tuple[str, WaitReason], int] = {}
    at_least: set[tuple[str, WaitReason]] = set()

    def add(queue: str, reason: WaitReason, n: int, capped: bool) -> None:
        counts[(queue, reason)] = counts.get((queue, reason), 0) + n
        if capped:
            at_least.add((queue, reason))

    for reason, step in (
        (WaitReason.DEPENDENCY, ("dependency", (JobState.WAITING.value, cap))),
        (WaitReason.NOT_DUE, ("not_due", (now, cap))),
    ):
        rows = yield step
        capped = sum(int(n) for _, n in rows) >= cap
        for queue, n in rows:
            add(str(queue), reason, int(n), capped)
    paused = {str(row[0]) for row in (yield ("paused", ()))}
    fair = yield from _kinds("")
    rated = yield from _kinds(registry.RATED)

    def served(queue: str, task: str) -> bool:
        return any(w.serves(queue, task) for w in workers)

    closed: set[str] = set()
    for kind in sorted(fair | rated):
        queue, _, task = kind
        held = (
            WaitReason.PAUSED
            if queue in paused
            else None
            if served(queue, task)
            else WaitReason.UNSERVED
        )
        if held is not None:
            for name, present in (("capped_count", fair), ("capped_rated_count", rated)):
                if kind in present:
                    n = int((yield (name, (*kind, cap)))[0][0])
                    add(queue, held, n, n >= cap)
            continue
        if kind not in rated:
            continue
        keys = yield ("rate_keys", (*rated_keys_params(*kind), KEY_CAP))
        if len(keys) >= KEY_CAP:
            add(queue, WaitReason.RATE_LIMIT, 0, True)
        for key, open_at in keys:
            if float(open_at) > now:
                closed.add(str(key))
                n = int((yield ("capped_key_count", (*kind, key, cap)))[0][0])
                add(queue, WaitReason.RATE_LIMIT, n, n >= cap)
    running_keys = yield ("running_keys", ())
    for key, running in sorted((str(k), int(n)) for k, n in running_keys):
        rows = yield ("keyed", (key, running, cap))
        capped = sum(int(row[3]) for row in rows) >= cap
        for queue, task, rate_key, n in rows:
            if queue in paused or not served(queue, task) or rate_key in closed:
                continue  # held by a reason tried before
            add(str(queue), WaitReason.CONCURRENCY, int(n), capped)
    return Waiting({k: n for k, n in counts.items()}, frozenset(at_least))


def _kinds(prefix: str) -> Generator[Step, Rows, set[registry.Kind]]:
    """The skip scan of :mod:`.workers` (it is sent one row or ``None``), as steps."""
    scan = registry.skip_scan(prefix)
    seek = next(scan)
    try:
        while True:
            rows = yield seek
            seek = scan.send(rows[0] if rows else None)
    except StopIteration as done:
        kinds: set[registry.Kind] = done.value
        return kinds


def drive(
    counting: Generator[Step, Rows, Waiting], fetchall: Callable[[str, tuple[Any, ...]], Rows]
) -> Waiting:
    """Run :func:`count_waiting` with a synchronous ``fetchall(name, params)``."""
    try:
        step = next(counting)
        while True:
            step = counting.send(fetchall(*step))
    except StopIteration as done:
        waiting: Waiting = done.value
        return waiting
