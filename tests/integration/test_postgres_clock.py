"""PostgreSQL on the server's clock: processes whose clocks are an hour off (a ``wall`` the
backend measures against the server's) still agree with a correct one on what is due and
which leases expired."""

from __future__ import annotations

import time

import pytest

from quart_jobs.backends.store_clock import REFRESH_SECONDS, OffsetRefresh, offset_from
from quart_jobs.models import NewJob

from .test_postgres import Factory, instances, opened  # noqa: F401  (instances: a fixture)

pytestmark = pytest.mark.postgres

LEASE = 30.0
HOUR = 3600.0


def behind() -> float:
    return time.time() - HOUR


def ahead() -> float:
    return time.time() + HOUR


async def test_a_process_an_hour_behind_claims_what_a_correct_one_enqueued(
    instances: Factory,  # noqa: F811
) -> None:
    correct = await opened(instances)
    late = await opened(instances, wall=behind)
    (queued,) = await correct.enqueue([NewJob("t")], time.time())

    (claimed,) = await late.claim("late", 1, behind(), LEASE)

    assert claimed.id == queued.job.id
    assert claimed.lease_expires_at is not None
    assert abs(claimed.lease_expires_at - (time.time() + LEASE)) < 10  # the server's time
    # the lease is live by the server's clock: a correct process does not take it back early
    assert await correct.recover_expired(time.time() + LEASE - 10) == 0
    assert await correct.recover_expired(time.time() + LEASE + 10) == 1


async def test_a_process_an_hour_ahead_runs_no_delayed_job_early(
    instances: Factory,  # noqa: F811
) -> None:
    correct = await opened(instances)
    early = await opened(instances, wall=ahead)
    await correct.enqueue([NewJob("t")], time.time())
    await correct.enqueue([NewJob("later", run_at=time.time() + 60)], time.time())
    assert len(await early.claim("early", 5, ahead(), LEASE)) == 1  # the ready one only

    next_at = await early.next_run_at()  # on the early process's own clock
    assert next_at is not None and abs(next_at - (ahead() + 60)) < 10


async def test_a_delay_asked_by_a_process_an_hour_ahead_counts_from_the_servers_time(
    instances: Factory,  # noqa: F811
) -> None:
    correct = await opened(instances)
    early = await opened(instances, wall=ahead)
    (queued,) = await early.enqueue([NewJob("t", run_at=ahead() + 60)], ahead())

    assert abs(queued.job.run_at - (time.time() + 60)) < 10
    assert abs(queued.job.enqueued_at - time.time()) < 10
    assert await correct.claim("w", 1, time.time(), LEASE) == []
    assert len(await correct.claim("w", 1, time.time() + 70, LEASE)) == 1


def test_the_offset_is_the_midpoint_of_the_round_trip_and_ignores_noise() -> None:
    assert offset_from(server=1000.0 + HOUR, sent=999.0, received=1001.0) == HOUR
    assert offset_from(server=1000.4, sent=999.0, received=1001.0) == 0.0


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_clock_that_jumps_ahead_while_running_is_measured_again(
    instances: Factory,  # noqa: F811
) -> None:
    skew = [0.0]
    correct = await opened(instances)
    jumpy = await opened(instances, wall=lambda: time.time() + skew[0])
    monotonic = Monotonic()
    jumpy._db.refresh = OffsetRefresh(monotonic)  # drive the 30 s refresh without waiting
    assert jumpy._db.refresh.due()
    await correct.enqueue([NewJob("later", run_at=time.time() + 60)], time.time())

    skew[0] = HOUR  # the host's clock jumps an hour ahead
    monotonic.now += REFRESH_SECONDS  # the measurement is due: the next call starts it
    await jumpy.recover_expired(time.time() + HOUR)
    assert jumpy._db.measuring is not None
    await jumpy._db.measuring

    assert await jumpy.claim("jumpy", 1, time.time() + HOUR, LEASE) == []  # not due for 60 s
    next_at = await jumpy.next_run_at()  # on the jumpy clock
    assert next_at is not None and abs(next_at - (time.time() + HOUR + 60)) < 10
