"""What the fault tests check, on SQLite and PostgreSQL alike: every accepted order has exactly
one job and at most one fulfilment, and no order disagrees with its job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: An order's status for each state of its job.
STATUS_OF_STATE = {
    "queued": "queued",
    "running": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}

Query = Callable[[str], Iterable[tuple[Any, ...]]]


@dataclass(frozen=True)
class Verdict:
    done: int  # accepted orders completed, with their job succeeded and one fulfilment
    lost: int  # accepted orders not (yet) done
    doubled: int  # orders with two jobs or two fulfilments
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
    """The verdict over ``accepted`` order ids, read with ``query`` (a SQL runner)."""
    orders = {
        int(i): (status, job_id, state)
        for i, status, job_id, state in query(
            "SELECT o.id, o.status, o.job_id, j.state FROM orders o "
            "LEFT JOIN qj_jobs j ON j.id = o.job_id"
        )
    }
    jobs_of: dict[int, int] = {}
    for (args,) in query("SELECT args FROM qj_jobs WHERE task = 'orders.process'"):
        order_id = int(json.loads(args)[0])
        jobs_of[order_id] = jobs_of.get(order_id, 0) + 1
    fulfilled = {
        int(i): int(n)
        for i, n in query("SELECT order_id, COUNT(*) FROM orders_fulfilments GROUP BY order_id")
    }
    done = sum(
        1
        for i in accepted
        if orders.get(i, ("", None, ""))[0] == "completed"
        and orders[i][2] == "succeeded"
        and jobs_of.get(i) == 1
        and fulfilled.get(i) == 1
    )
    doubled = sum(1 for n in jobs_of.values() if n > 1) + sum(
        1 for n in fulfilled.values() if n > 1
    )
    disagreeing = sum(
        1 for status, _, state in orders.values() if STATUS_OF_STATE.get(state) != status
    )
    return Verdict(done, len(accepted) - done, doubled, disagreeing)
