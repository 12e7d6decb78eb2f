"""Rate limits, pure: parsing, the start log against a brute-force list of every start, and the
claim's budgets composed with tiers and concurrency keys (``fairness.choose_starts``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quart_jobs import fairness
from quart_jobs.rate import MAX_ENTRIES, KeyState, RateLimit, StartLog, margin, settle


@pytest.mark.parametrize(
    ("text", "n", "period"),
    [
        ("10/s", 10, 1.0),
        ("100/m", 100, 60.0),
        ("5/h", 5, 3600.0),
        ("20/5s", 20, 5.0),
        ("3/0.5s", 3, 0.5),
        (" 7 / s ", 7, 1.0),
    ],
)
def test_a_limit_is_n_per_period(text: str, n: int, period: float) -> None:
    assert RateLimit.parse(text) == RateLimit(n, period)


@pytest.mark.parametrize(
    "text",
    ["20 per s", "10/d", "0/s", "10", "/s", "-1/s", "10/0s", "1.5/s", "10/2m", "", "5/86401s"],
)
def test_a_malformed_limit_is_refused_with_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"write N/PERIOD, e\.g\. \"10/s\"") as info:
        RateLimit.parse(text)
    assert repr(text) in str(info.value)


def test_a_limit_prints_as_it_is_written() -> None:
    assert [str(RateLimit.parse(t)) for t in ("10/s", "100/m", "5/h", "20/5s")] == [
        "10/s",
        "100/m",
        "5/h",
        "20/5s",
    ]


def brute_count(starts: list[float], since: float) -> int:
    return sum(1 for t in starts if t > since)


def windows_hold(starts: list[float], limit: RateLimit) -> bool:
    """Every half-open window of the period's length holds at most n starts."""
    ordered = sorted(starts)
    return all(sum(1 for t in ordered if a <= t < a + limit.period) <= limit.n for a in ordered)


steps = st.lists(st.tuples(st.floats(0.0, 3.0), st.integers(1, 4)), min_size=1, max_size=80)
limits = st.builds(RateLimit, st.integers(1, 12), st.sampled_from([0.5, 1.0, 2.5, 10.0]))


@settings(max_examples=300, deadline=None)
@given(steps, limits)
def test_starting_the_budget_each_claim_never_exceeds_the_limit_in_any_window(
    claims: list[tuple[float, int]], limit: RateLimit
) -> None:
    """Claims at increasing times each start min(wanted, budget): every window holds at most
    n starts (the brute force checks every window), and the log's count equals the brute
    force's while no entry was merged."""
    log, starts, now = StartLog(), [], 100.0
    for gap, wanted in claims:
        now += gap
        since = now - (limit.period + margin(limit.period))
        if len(log.entries) < MAX_ENTRIES:
            assert log.count_after(since) == brute_count(starts, since)
        take = min(wanted, log.budget(limit, now))
        log.charge(now, take)
        log.prune(now, limit.period)
        starts += [now] * take
    assert windows_hold(starts, limit)


@settings(max_examples=300, deadline=None)
@given(steps, limits)
def test_open_at_is_the_first_time_with_a_budget(
    claims: list[tuple[float, int]], limit: RateLimit
) -> None:
    log, now = StartLog(), 0.0
    for gap, wanted in claims:
        now += gap
        log.charge(now, min(wanted, log.budget(limit, now)))
    opening = log.open_at(limit, now)
    assert opening >= now
    assert log.budget(limit, opening) > 0
    if opening > now:  # just before it, still closed
        assert log.budget(limit, opening - 1e-6) == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 0.01), min_size=MAX_ENTRIES + 1, max_size=MAX_ENTRIES + 60))
def test_a_full_log_merges_into_later_times_and_never_admits_more(gaps: list[float]) -> None:
    """Past the cap the log merges neighbours into the later one: it counts at least what the
    brute force counts at every time (so it never admits more), and keeps its size."""
    log, starts, now = StartLog(), [], 0.0
    for gap in gaps:
        now += gap + 1e-4
        log.charge(now, 1)
        starts.append(now)
    assert len(log.entries) <= MAX_ENTRIES
    assert sum(c for _, c in log.entries) == len(starts)
    for t in starts:
        assert log.count_after(t) >= brute_count(starts, t)


def test_a_clock_stepped_back_admits_nothing_more() -> None:
    limit = RateLimit(5, 1.0)
    log = StartLog()
    log.charge(100.0, 5)
    assert log.budget(limit, 90.0) == 0  # starts "in the future" still count
    assert log.open_at(limit, 90.0) == pytest.approx(101.0 + margin(1.0))


def test_settle_keeps_the_strictest_limit_and_the_longest_period() -> None:
    states = {"k": KeyState()}
    changed = settle({"k": [RateLimit(10, 1.0), RateLimit(2, 5.0)]}, states, {"k": 2}, 50.0)
    state = changed["k"]
    assert state.period == 5.0
    assert state.open_at == pytest.approx(55.0 + margin(5.0))
    assert StartLog.loads(state.log.dumps()).entries == [(50.0, 2)]


@dataclass(frozen=True)
class Job:
    id: int
    queue: str = "q"
    priority: int = 10
    tag: float = 0.0
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None


jobs_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 10]),
        st.sampled_from([None, "a", "b"]),
        st.sampled_from([None, "c"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    jobs_strategy,
    st.integers(1, 20),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 5)),
    st.integers(0, 3),
)
def test_choose_starts_keeps_every_budget_and_concurrency_limit_and_order(
    spec: list[tuple[int, str | None, str | None]],
    limit: int,
    budgets: dict[str, int],
    running: int,
) -> None:
    """Tiers, rate budgets and concurrency keys together: no key over its budget or limit, a
    job skipped only when blocked, and each key's jobs started in their tier's order."""
    jobs = [
        Job(
            i,
            priority=p,
            tag=float(i),
            rate_key=r,
            concurrency_key=c,
            concurrency_limit=2 if c else None,
        )
        for i, (p, r, c) in enumerate(spec)
    ]
    heads: dict[tuple[str, int], list[Job]] = {}
    for job in jobs:
        heads.setdefault((job.queue, job.priority), []).append(job)
    chosen, _ = fairness.choose_starts(
        [], heads, limit, fairness.Weights(), 0.0, {"c": running}, budgets
    )
    for key in ("a", "b"):
        assert sum(1 for j in chosen if j.rate_key == key) <= budgets.get(key, 0)
    assert running + sum(1 for j in chosen if j.concurrency_key == "c") <= max(running, 2)
    picked = {j.id for j in chosen}
    if len(chosen) < limit:  # every job left out was blocked by one of its keys
        for job in jobs:
            if job.id not in picked:
                rate_full = job.rate_key is not None and sum(
                    1 for j in chosen if j.rate_key == job.rate_key
                ) >= budgets.get(job.rate_key, 0)
                conc_full = (
                    job.concurrency_key is not None
                    and running + sum(1 for j in chosen if j.concurrency_key == "c") >= 2
                )
                assert rate_full or conc_full
    for tier in heads.values():  # within a tier, starts keep (tag, id) order per key
        started = [j for j in chosen if (j.queue, j.priority) == (tier[0].queue, tier[0].priority)]
        assert started == sorted(started, key=lambda j: j.tag)
