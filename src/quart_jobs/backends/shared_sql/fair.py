"""The fair claim's SQL, written once for SQLite and PostgreSQL (rendered per dialect by
:func:`~.dialect.render`), and the steps both SQL backends take around
:mod:`quart_jobs.fairness`.

State: ``qj_fair_tiers`` holds a :class:`~quart_jobs.fairness.TierClock` per (queue, priority);
``qj_fair_owners`` each owner's next tag per (queue, priority). A queued job's ``tag`` is set
when it becomes ready (at enqueue, or by the claim that finds it due) and ``NULL`` before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...fairness import FairBook, TierClock, owner_key
from ..rows import CANDIDATE_COLUMNS
from .jobs import OWNER, PRIORITY, QUEUE, RUN_AT
from .pauses import NOT_PAUSED

#: Jobs whose run_at passed are tagged by the claim in batches of at most this many.
TAG_BATCH = 5000


TIERS = "SELECT queue, priority, vtime, start, finish, served FROM qj_fair_tiers"
#: The tiers a claim may start jobs from: those of queues not paused (one primary-key probe of
#: ``qj_queue_pauses`` per tier row). Tagging reads every tier (:data:`TIERS`).
OWNER_NEXT = "SELECT next_tag FROM qj_fair_owners WHERE queue = ? AND priority = ? AND owner = ?"
SAVE_OWNER = (
    "INSERT INTO qj_fair_owners (queue, priority, owner, next_tag) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (queue, priority, owner) DO UPDATE SET next_tag = excluded.next_tag"
)
SAVE_TIER = (
    "INSERT INTO qj_fair_tiers (queue, priority, vtime, start, finish, served) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (queue, priority) DO UPDATE SET "
    "vtime = excluded.vtime, start = excluded.start, finish = excluded.finish, "
    "served = excluded.served"
)
ENSURE_TIER = (
    "INSERT INTO qj_fair_tiers (queue, priority) VALUES (?, ?) "
    "ON CONFLICT (queue, priority) DO NOTHING"
)
DUE = (
    "SELECT id, queue, priority, owner FROM qj_jobs{due} "
    "WHERE state = 'queued' AND tag IS NULL AND run_at <= ? ORDER BY run_at, id LIMIT ?"
    "{skip_locked}"
)
SET_TAG = "UPDATE qj_jobs SET tag = ? WHERE id = ?"
#: Ready jobs without a rate key (``qj_jobs_fair``), and with one (``qj_jobs_rated``).
UNRATED = "state = 'queued' AND tag IS NOT NULL AND rate_key IS NULL"
RATED = "state = 'queued' AND tag IS NOT NULL AND rate_key IS NOT NULL"
HEADS = (
    f"SELECT {CANDIDATE_COLUMNS} FROM qj_jobs{{fair}} "
    f"WHERE {UNRATED} AND queue = ? AND priority = ? AND task = ? "
    "ORDER BY tag, id LIMIT ?"
)
READY_TASKS = (
    "SELECT queue, task, SUM(n) FROM ("
    f"SELECT queue, task, COUNT(*) AS n FROM qj_jobs{{fair}} WHERE {UNRATED} GROUP BY queue, task "
    f"UNION ALL SELECT queue, task, COUNT(*) FROM qj_jobs{{rated}} WHERE {RATED} "
    "GROUP BY queue, task) AS parts GROUP BY queue, task"
)
#: The tier clocks a claim reads (queues not paused), and whether the tier has ready jobs with
#: a rate key (one probe of ``qj_jobs_rated`` per tier: the claim takes the rated steps only
#: then).
CLAIM_TIERS = (
    "SELECT t.queue, t.priority, t.vtime, t.start, t.finish, t.served, "
    "EXISTS (SELECT 1 FROM qj_jobs AS j{rated} WHERE j.state = 'queued' AND j.tag IS NOT NULL "
    "AND j.rate_key IS NOT NULL AND j.queue = t.queue AND j.priority = t.priority) "
    f"FROM qj_fair_tiers AS t WHERE {NOT_PAUSED}"
)
QUEUED_TASKS = "SELECT DISTINCT task FROM qj_jobs WHERE state = 'queued' AND tag IS NOT NULL"
RUNNING_KEYS = (
    "SELECT concurrency_key, COUNT(*) FROM qj_jobs "
    "WHERE state = 'running' AND concurrency_key IS NOT NULL GROUP BY concurrency_key"
)
# Idle owners (their next tag is behind their tier's virtual time) change no tag: forget them.
FORGET_IDLE_OWNERS = (
    "DELETE FROM qj_fair_owners WHERE next_tag <= (SELECT t.vtime FROM qj_fair_tiers AS t "
    "WHERE t.queue = qj_fair_owners.queue AND t.priority = qj_fair_owners.priority)"
)


def clock_from_row(row: Sequence[Any]) -> TierClock:
    return TierClock(str(row[0]), int(row[1]), *(float(v) for v in row[2:6]))


def clock_params(clock: TierClock) -> tuple[Any, ...]:
    return (clock.queue, clock.priority, clock.vtime, clock.start, clock.finish, clock.served)


def owner_params(book: FairBook) -> list[tuple[Any, ...]]:
    """Rows for :data:`SAVE_OWNER`: the owners whose next tag changed."""
    return [(*key, book.owners[key]) for key in sorted(book.owners_changed)]


def owner_keys(rows: Iterable[tuple[str, int, str | None]]) -> list[tuple[str, int, str]]:
    """The distinct (queue, priority, owner key) of jobs to tag."""
    return sorted({(q, p, owner_key(o)) for q, p, o in rows})


def ready_rows(rows: Sequence[tuple[Any, ...]], now: float) -> list[int]:
    """Positions of the insert rows (:func:`~.jobs.insert_params`) ready now: tagged at once."""
    return [i for i, row in enumerate(rows) if row[RUN_AT] <= now]


def tag_key(row: tuple[Any, ...]) -> tuple[str, int, str | None]:
    return (row[QUEUE], row[PRIORITY], row[OWNER])
