"""Where the tier is decided: the fair, weighted claim order, on plain lists.

The properties are checked over random arrival sequences (hypothesis): no starvation, tier
shares within the start-time fair queuing bound, owners round-robin, FIFO per owner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quart_jobs.fairness import (
    FairBook,
    TierClock,
    Weights,
    choose_starts,
    claim_time,
)
from quart_jobs.models import Tier

VIP, REGULAR = int(Tier.VIP), int(Tier.REGULAR)
NOW = 10_000.0


@dataclass(frozen=True)
class J:
    id: int
    priority: int
    owner: str
    tag: float
    queue: str = "default"
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None


class Sim:
    """One queue, one slot at a time: jobs arrive, ``step`` starts the next."""

    def __init__(self, weights: Weights | None = None) -> None:
        self.book = FairBook()
        self.weights = weights or Weights()
        self.waiting: list[J] = []
        self.started: list[J] = []
        self._ids = 0

    def arrive(self, priority: int, owner: str, **kw: object) -> J:
        self._ids += 1
        job = J(self._ids, priority, owner, self.book.tag("default", priority, owner), **kw)  # type: ignore[arg-type]
        self.waiting.append(job)
        return job

    def step(self, n: int = 1, running: dict[str, int] | None = None) -> list[J]:
        heads: dict[tuple[str, int], list[J]] = {}
        for job in sorted(self.waiting, key=lambda j: (j.tag, j.id)):
            heads.setdefault((job.queue, job.priority), []).append(job)
        chosen = self.book.start(heads, n, self.weights, NOW, running)
        for job in chosen:
            self.waiting.remove(job)
        self.started += chosen
        return chosen

    def owners(self) -> str:
        return "".join(j.owner for j in self.started)


# --- examples -------------------------------------------------------------------------------


def test_a_vip_arriving_while_only_regular_jobs_wait_starts_next() -> None:
    sim = Sim()
    for _ in range(100):
        sim.arrive(REGULAR, "b")
    sim.step(3)
    vip = sim.arrive(VIP, "a")
    assert sim.step() == [vip]


def test_both_tiers_waiting_vip_gets_nine_starts_per_regular_start() -> None:
    sim = Sim()
    for _ in range(100):
        sim.arrive(REGULAR, "b")
    sim.step()
    for _ in range(100):
        sim.arrive(VIP, "a")
    sim.step(40)
    assert sim.owners() == "b" + "aaaaaaaaab" * 4


def test_strict_priority_is_an_infinite_weight() -> None:
    sim = Sim(Weights({VIP: math.inf, REGULAR: 1}))
    for _ in range(5):
        sim.arrive(REGULAR, "b")
    for _ in range(5):
        sim.arrive(VIP, "a")
    sim.step(10)
    assert sim.owners() == "aaaaabbbbb"


def test_a_new_owner_joins_the_current_round() -> None:
    sim = Sim()
    for _ in range(1000):
        sim.arrive(REGULAR, "b")
    sim.step(10)
    sim.arrive(REGULAR, "c")
    assert [j.owner for j in sim.step(2)].count("c") == 1


def test_jobs_blocked_by_their_concurrency_key_keep_their_place() -> None:
    sim = Sim()
    keyed = [sim.arrive(REGULAR, "b", concurrency_key="k", concurrency_limit=1) for _ in range(3)]
    free = sim.arrive(REGULAR, "c")
    assert sim.step(4) == [keyed[0], free]
    assert sim.step(4, running={"k": 1}) == []
    assert sim.step(4, running={"k": 0}) == [keyed[1]]


def test_queues_take_turns() -> None:
    book = FairBook()
    heads = {
        ("a", REGULAR): [J(i, REGULAR, "x", float(i), queue="a") for i in range(5)],
        ("b", REGULAR): [J(10 + i, REGULAR, "x", float(i), queue="b") for i in range(5)],
    }
    chosen = book.start(heads, 6, Weights(), NOW)
    assert [j.queue for j in chosen] == ["a", "b", "a", "b", "a", "b"]


def test_weights_refuse_zero_negative_and_nan() -> None:
    for bad in (0, -1, math.nan):
        with pytest.raises(ValueError, match="positive number"):
            Weights({VIP: bad})


def test_choose_starts_returns_only_the_clocks_it_changed() -> None:
    clocks = [TierClock("default", VIP), TierClock("default", REGULAR), TierClock("other", VIP)]
    heads = {("default", REGULAR): [J(1, REGULAR, "b", 0.0)]}
    chosen, changed = choose_starts(clocks, heads, 5, Weights(), NOW)
    assert [j.id for j in chosen] == [1]
    assert [(c.queue, c.priority) for c in changed] == [("default", REGULAR)]


# --- properties -----------------------------------------------------------------------------

OWNERS = st.sampled_from(["a", "b", "c", "d", "e"])
# An arrival (priority, owner) or a start (None).
EVENTS = st.lists(
    st.one_of(st.tuples(st.sampled_from([VIP, REGULAR]), OWNERS), st.none()),
    min_size=1,
    max_size=300,
)


def run(events: list[tuple[int, str] | None], weights: Weights | None = None) -> Sim:
    sim = Sim(weights)
    for event in events:
        if event is None:
            sim.step()
        else:
            sim.arrive(*event)
    return sim


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_each_owners_jobs_start_in_enqueue_order(events: list[tuple[int, str] | None]) -> None:
    sim = run(events)
    sim.step(len(sim.waiting))
    for tier in (VIP, REGULAR):
        for owner in "abcde":
            ids = [j.id for j in sim.started if j.owner == owner and j.priority == tier]
            assert ids == sorted(ids)


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.integers(min_value=1, max_value=20))
def test_no_starvation_while_regular_jobs_wait_at_most_w_vip_starts_in_a_row(
    events: list[tuple[int, str] | None], weight: int
) -> None:
    """Over any arrival sequence: while a regular job waits, the VIP tier takes at most
    ``weight`` starts in a row; and every job starts once arrivals stop."""
    sim = Sim(Weights({VIP: weight, REGULAR: 1}))
    in_a_row = 0
    arrived = 0
    for event in [*events, *([None] * 400)]:
        if event is not None:
            sim.arrive(*event)
            arrived += 1
            continue
        regular_waiting = any(j.priority == REGULAR for j in sim.waiting)
        started = sim.step()
        if started and started[0].priority == VIP and regular_waiting:
            in_a_row += 1
            assert in_a_row <= weight
        else:
            in_a_row = 0
    assert not sim.waiting and len(sim.started) == arrived


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=20),
    st.lists(OWNERS, min_size=1, max_size=40),
    st.lists(OWNERS, min_size=1, max_size=40),
    st.integers(min_value=0, max_value=60),
)
def test_tier_shares_hold_within_the_fair_queuing_bound(
    weight: int, vip_owners: list[str], regular_owners: list[str], starts: int
) -> None:
    """Both tiers backlogged (any owners, any backlog sizes): over any prefix of the starts,
    VIP starts / weight and regular starts / 1 differ by at most 1/weight + 1 (SFQ's bound),
    so regular keeps at least 1/(weight+1) of the starts, whatever the VIP load."""
    sim = Sim(Weights({VIP: weight, REGULAR: 1}))
    for owner in regular_owners * 3:
        sim.arrive(REGULAR, owner)
    sim.step(starts % 3)  # the regular tier may have started already, or not
    for owner in vip_owners * 3:
        sim.arrive(VIP, owner)
    begin = len(sim.started)
    vip = regular = 0
    while (
        sim.waiting
        and any(j.priority == VIP for j in sim.waiting)
        and any(j.priority == REGULAR for j in sim.waiting)
    ):
        (job,) = sim.step()
        vip += job.priority == VIP
        regular += job.priority == REGULAR
        assert abs(vip / weight - regular) <= 1 / weight + 1 + 1e-9
        run_of_vip = 0
        for started in reversed(sim.started[begin:]):
            if started.priority != VIP:
                break
            run_of_vip += 1
        assert run_of_vip <= weight  # no more than `weight` VIP starts in a row


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(OWNERS, st.integers(min_value=1, max_value=30)), min_size=2, max_size=5))
def test_owners_in_a_tier_share_round_robin(backlogs: list[tuple[str, int]]) -> None:
    """Owners with waiting jobs alternate: over any window while two owners both wait, their
    start counts differ by at most 2 (1/w_a + 1/w_b for unit weights)."""
    sim = Sim()
    sizes: dict[str, int] = {}
    for owner, n in backlogs:
        sizes[owner] = sizes.get(owner, 0) + n
        for _ in range(n):
            sim.arrive(REGULAR, owner)
    sim.step(sum(sizes.values()))
    order = sim.owners()
    for a in sizes:
        for b in sizes:
            if a >= b:
                continue
            # While both still have jobs to start: the prefix before either runs out.
            both = min(_last(order, a), _last(order, b))
            for i in range(both + 1):
                for j in range(i, both + 1):
                    window = order[i : j + 1]
                    assert abs(window.count(a) - window.count(b)) <= 2


def _last(order: str, owner: str) -> int:
    return order.rindex(owner)


@settings(max_examples=100, deadline=None)
@given(EVENTS)
def test_a_vips_wait_does_not_grow_with_the_regular_backlog(
    events: list[tuple[int, str] | None],
) -> None:
    """A VIP job from a new VIP owner starts within (VIP owners waiting) VIP starts plus
    their share of regular starts, however many regular jobs wait."""
    sim = run(events)
    for _ in range(500):
        sim.arrive(REGULAR, "z")
    vip_owners_waiting = len({j.owner for j in sim.waiting if j.priority == VIP})
    newcomer = sim.arrive(VIP, "new")
    bound = vip_owners_waiting + 1 + math.ceil((vip_owners_waiting + 1) / 9)
    started = sim.step(bound)
    assert newcomer in started


@pytest.mark.parametrize(("value", "expected"), [("vip", 0), ("REGULAR", 10), ("5", 5), (3, 3)])
def test_tier_parse(value: str | int, expected: int) -> None:
    assert Tier.parse(value) == expected


def test_tier_parse_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown tier 'gold'"):
        Tier.parse("gold")


def test_a_claim_is_stamped_after_the_last_start_of_its_queues() -> None:
    last = TierClock("default", VIP, served=100.0)
    assert claim_time([last, TierClock("default", REGULAR)], 99.5) == 100.0
    assert claim_time([last], 101.0) == 101.0
    assert claim_time([], 42.0) == 42.0
