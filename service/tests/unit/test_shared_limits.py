"""Limits shared by a group of web processes: two limiters on one file are one limiter (each
stands for a process; the acceptance tests run real ones)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Clock

from order_service.shared import PREAMBLE, SharedFailureThrottle, SharedRateLimiter, SlotFile


def test_two_processes_spend_one_bucket_per_customer(tmp_path: Path, clock: Clock) -> None:
    a, b = (SharedRateLimiter(tmp_path / "customers", 2.0, clock=clock) for _ in range(2))
    taken = [limiter.take("c1").allowed for limiter in (a, b) * 3]
    assert taken == [True] * 4 + [False] * 2  # the burst (twice the rate) once, not per process
    assert b.take("c2").allowed  # another customer has a bucket of its own
    clock.advance(0.5)  # one token back
    assert a.take("c1").allowed
    decision = b.take("c1")
    assert (decision.allowed, decision.retry_after) == (False, 1)


def test_a_vip_gets_the_larger_allowance_in_the_group(tmp_path: Path, clock: Clock) -> None:
    a, b = (SharedRateLimiter(tmp_path / "customers", 1.0, clock=clock) for _ in range(2))
    assert sum(limiter.take("v", vip=True).allowed for limiter in (a, b) * 5) == 4
    assert sum(limiter.take("r").allowed for limiter in (a, b) * 5) == 2


def test_failed_logins_are_counted_for_the_group(tmp_path: Path, clock: Clock) -> None:
    a, b = (SharedFailureThrottle(tmp_path / "logins", 3, 60.0, monotonic=clock) for _ in "ab")
    assert a.retry_after("10.0.0.1") is None
    a.failed("10.0.0.1")
    clock.advance(10)
    b.failed("10.0.0.1")
    assert a.retry_after("10.0.0.1") is None and b.retry_after("10.0.0.1") is None
    a.failed("10.0.0.1")  # the third within the minute, whichever process saw it
    assert b.retry_after("10.0.0.1") == 50  # until the first is a minute old
    assert a.retry_after("10.0.0.2") is None  # another client is not held
    clock.advance(50)
    assert b.retry_after("10.0.0.1") is None
    b.failed("10.0.0.1")
    assert a.retry_after("10.0.0.1") == 10


def test_memory_stays_bounded_the_least_recently_used_record_goes(tmp_path: Path) -> None:
    table = SlotFile(tmp_path / "t", fields=1, slots=4, probe=4)
    for i in range(4):
        table.update(f"k{i}", float(i), lambda _, i=i: (float(i),))
    table.update("k0", 10.0, lambda values: values)  # k0 used again: k1 is now the oldest
    table.update("new", 11.0, lambda values: (99.0,) if values is None else values)
    seen = {
        key: table.update(key, 12.0, lambda values: values) for key in ("k0", "k1", "k2", "new")
    }
    assert seen == {"k0": (0.0,), "k1": None, "k2": (2.0,), "new": (99.0,)}
    assert (tmp_path / "t").stat().st_size == PREAMBLE + 4 * (8 + 8 + 8)  # it never grows


def test_a_record_can_be_dropped(tmp_path: Path) -> None:
    table = SlotFile(tmp_path / "t", fields=1)
    table.update("k", 1.0, lambda _: (5.0,))
    assert table.update("k", 2.0, lambda _: None) is None
    assert table.update("k", 3.0, lambda values: values) is None


def test_every_process_of_the_group_hashes_with_the_files_secret(tmp_path: Path) -> None:
    first, second = SlotFile(tmp_path / "t", fields=1), SlotFile(tmp_path / "t", fields=1)
    first.update("k", 1.0, lambda _: (7.0,))
    assert second.update("k", 2.0, lambda values: values) == (7.0,)
    assert first._secret == second._secret and any(first._secret)
    other = SlotFile(tmp_path / "u", fields=1)
    assert other._secret != first._secret  # another group, another key
