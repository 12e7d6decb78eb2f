"""What the fault tests check, on SQLite and PostgreSQL alike: every accepted order has exactly
one job, its job recorded one end (one outcome write the lease fence let through), and its
fulfilment was written once; no order disagrees with its job.

The fulfilment table's primary key already forbids two fulfilment *rows* for an order, so
counting rows proves nothing. :func:`install_witness` adds triggers that log every write that
took effect (a fulfilment inserted or overwritten, a job's state set to an end state) in a
table without such a key: a second completion of an order, or a late outcome that a broken
fence let through, shows there as a second row.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

#: An order's status for each state of its job.
STATUS_OF_STATE = {
    "queued": "queued",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}

Query = Callable[[str], Iterable[tuple[Any, ...]]]

_ENDS = "('succeeded', 'failed', 'cancelled')"

#: The witness, per dialect: statements run once, after the service created its tables and
#: before the first order. The log is ``witness_writes (kind, ref)``: ``('fulfilment', order
#: id)`` for each fulfilment write that changed a row, ``('end', job id)`` for each write that
#: set a job's end state.
WITNESS = {
    "sqlite": [
        "CREATE TABLE witness_writes (kind TEXT NOT NULL, ref INTEGER NOT NULL)",
        "CREATE TRIGGER witness_fulfilment_insert AFTER INSERT ON orders_fulfilments "
        "BEGIN INSERT INTO witness_writes VALUES ('fulfilment', NEW.order_id); END",
        "CREATE TRIGGER witness_fulfilment_update AFTER UPDATE ON orders_fulfilments "
        "BEGIN INSERT INTO witness_writes VALUES ('fulfilment', NEW.order_id); END",
        f"CREATE TRIGGER witness_job_end AFTER UPDATE OF state ON qj_jobs "
        f"WHEN NEW.state IN {_ENDS} "
        "BEGIN INSERT INTO witness_writes VALUES ('end', NEW.id); END",
    ],
    "postgresql": [
        "CREATE TABLE public.witness_writes (kind text NOT NULL, ref bigint NOT NULL)",
        "CREATE FUNCTION public.witness_fulfilment() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO public.witness_writes VALUES ('fulfilment', NEW.order_id); "
        "RETURN NULL; END $$",
        "CREATE FUNCTION public.witness_job_end() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN INSERT INTO public.witness_writes VALUES ('end', NEW.id); RETURN NULL; END $$",
        "CREATE TRIGGER witness_fulfilment AFTER INSERT OR UPDATE ON orders_fulfilments "
        "FOR EACH ROW EXECUTE FUNCTION public.witness_fulfilment()",
        f"CREATE TRIGGER witness_job_end AFTER UPDATE OF state ON qj_jobs FOR EACH ROW "
        f"WHEN (NEW.state IN {_ENDS}) EXECUTE FUNCTION public.witness_job_end()",
    ],
}


def install_witness(execute: Callable[[str], object], dialect: str) -> None:
    """Add the witness triggers with ``execute`` (a SQL runner that commits)."""
    for statement in WITNESS[dialect]:
        execute(statement)


@dataclass(frozen=True)
class Verdict:
    done: int  # accepted orders completed, their job succeeded once, fulfilled once
    lost: int  # accepted orders not (yet) done
    doubled: int  # orders with two jobs, two fulfilment writes or two recorded ends
    disagreeing: int  # orders whose status is not their job's

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.lost, self.doubled, self.disagreeing

    def __str__(self) -> str:
        return (
            f"done={self.done} lost={self.lost} doubled={self.doubled} "
            f"disagreeing={self.disagreeing}"
        )


def verdict(query: Query, accepted: set[int]) -> Verdict:
    """The verdict over ``accepted`` order ids, read with ``query`` (a SQL runner) from a
    database that has the witness (:func:`install_witness`)."""
    orders = {
        int(i): (status, job_id, state)
        for i, status, job_id, state in query(
            "SELECT o.id, o.status, o.job_id, j.state FROM orders o "
            "LEFT JOIN qj_jobs j ON j.id = o.job_id"
        )
    }
    jobs_of: Counter[int] = Counter()
    for (args,) in query("SELECT args FROM qj_jobs WHERE task = 'orders.process'"):
        jobs_of[int(json.loads(args)[0])] += 1
    written: dict[str, Counter[int]] = {"fulfilment": Counter(), "end": Counter()}
    for kind, ref in query("SELECT kind, ref FROM witness_writes"):
        written[kind][int(ref)] += 1
    fulfilled, ended = written["fulfilment"], written["end"]

    def once(i: int) -> bool:
        status, job_id, state = orders.get(i, ("", None, ""))
        return (
            status == "completed"
            and state == "succeeded"
            and jobs_of[i] == 1
            and fulfilled[i] == 1
            and job_id is not None
            and ended[int(job_id)] == 1
        )

    done = sum(1 for i in accepted if once(i))
    doubled = (
        sum(1 for n in jobs_of.values() if n > 1)
        + sum(1 for n in fulfilled.values() if n > 1)
        + sum(1 for n in ended.values() if n > 1)
    )
    disagreeing = sum(
        1 for status, _, state in orders.values() if STATUS_OF_STATE.get(state) != status
    )
    return Verdict(done, len(accepted) - done, doubled, disagreeing)


def sqlite_witness(db: Path) -> None:
    """Install the witness in a SQLite file the service has created."""
    with contextlib.closing(sqlite3.connect(db, timeout=30, isolation_level=None)) as conn:
        install_witness(conn.execute, "sqlite")


def sqlite_verdict(db: Path, accepted: set[int]) -> Verdict:
    """The verdict, read straight from the database file."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return verdict(lambda sql: conn.execute(sql).fetchall(), accepted)


# --- PostgreSQL -----------------------------------------------------------------------------


def pg_witness(url: str) -> None:
    """Install the witness of writes  in the service's tables."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        install_witness(conn.execute, "postgresql")


def pg_verdict(url: str, accepted: set[int]) -> Verdict:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return verdict(lambda sql: conn.execute(sql).fetchall(), accepted)


def outcome(url: str, accepted: set[int]) -> tuple[int, int, int]:
    """(done, lost, doubled) among the accepted orders; an order that disagrees with its job
    counts as doubled (something was done that the other does not show)."""
    result = pg_verdict(url, accepted)
    return result.done, result.lost, result.doubled + result.disagreeing


def finished(url: str, accepted: set[int]) -> bool:
    try:
        return outcome(url, accepted)[0] == len(accepted)
    except psycopg.OperationalError:
        return False


def held_by(url: str, pid: int) -> set[int]:
    """Ids of the jobs that the worker process ``pid`` holds (running under its lease)."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id FROM qj_jobs WHERE state = 'running' AND worker LIKE %s", (f"%:{pid}:%",)
        ).fetchall()
    return {int(i) for (i,) in rows}


def attempts_of(url: str, ids: set[int]) -> dict[int, tuple[str, int]]:
    """Each job's state and attempts."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id, state, attempts FROM qj_jobs WHERE id = ANY(%s)", (sorted(ids),)
        ).fetchall()
    return {int(i): (str(s), int(a)) for i, s, a in rows}
