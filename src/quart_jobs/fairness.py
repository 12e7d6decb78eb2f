"""Where the tier is decided: which queued job starts next (pure, no I/O).

Backends store and read; the order is decided here, so every backend orders jobs the same way
and the rules are tested without a database (see ``docs/guarantees.md`` for the bounds).

Fair claim, in two levels, per queue (start-time fair queuing, unit cost per start):

* **Owners within a tier** share starts round-robin. When a job becomes ready it gets a
  *tag*: ``max(tier's virtual time, owner's next tag)``; the owner's next tag becomes
  ``tag + 1``. The tier's virtual time is the largest tag started in that tier. So an owner's
  k-th waiting job sits in round k, a newcomer's first job in the current round, and each
  owner's jobs keep their enqueue order. A tier starts its jobs in ``(tag, id)`` order: one
  index range per tier.
* **Tiers within a queue** are weighted: a tier of weight ``w`` gets a start tag
  ``S = max(V, F)`` where ``V`` is the queue's virtual time (the start tag of its last start) and
  ``F`` the tier's finish tag; the claim starts the tier with the smallest ``S`` (ties: the
  more urgent priority) and sets ``F = S + 1/w``. Both tiers waiting, a tier of weight 9 gets
  9 starts for each start of a tier of weight 1; a tier that was idle starts at once; weight
  ``math.inf`` is strict priority.
* **Queues**, for a worker serving several, take turns: the queue served least recently goes
  first.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from .models import Tier

#: The tag step between an owner's consecutive jobs (one round of the tier's round-robin).
OWNER_STEP = 1.0
#: Weights of the named tiers by default: VIP gets 9 starts for each regular start.
DEFAULT_WEIGHTS: Mapping[int, float] = {int(Tier.VIP): 9.0, int(Tier.REGULAR): 1.0}
#: The weight of a priority that :class:`Weights` does not name.
DEFAULT_WEIGHT = 1.0
#: Owner key of jobs without an owner: they form one owner.
NO_OWNER = ""


@dataclass(frozen=True, slots=True)
class Weights:
    """The share of each priority level when several have jobs waiting (see module doc).

    ``Weights({0: 9, 10: 1})``: priority 0 gets 9 starts for each start of priority 10.
    ``math.inf`` gives strict priority (the level always goes first). A level not named gets
    ``default``."""

    by_priority: Mapping[int, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    default: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        for priority, weight in (*self.by_priority.items(), (None, self.default)):
            if not isinstance(weight, int | float) or math.isnan(weight) or weight <= 0:
                what = "default weight" if priority is None else f"weight of priority {priority}"
                raise ValueError(f"{what} must be a positive number or math.inf, not {weight!r}")

    @classmethod
    def of(cls, value: Weights | Mapping[int, float] | None) -> Weights:
        if value is None:
            return cls()
        if isinstance(value, Weights):
            return value
        return cls({int(p): float(w) for p, w in value.items()})

    def weight(self, priority: int) -> float:
        return float(self.by_priority.get(priority, self.default))

    def step(self, priority: int) -> float:
        """How far a start moves the tier's finish tag: ``1 / weight`` (0 for strict)."""
        return 1.0 / self.weight(priority)


def vip_weights(vip_weight: float) -> Weights:
    """The order service's two tiers: VIP gets ``vip_weight`` starts per regular start."""
    return Weights({int(Tier.VIP): vip_weight, int(Tier.REGULAR): 1.0})


@dataclass(frozen=True, slots=True)
class TierClock:
    """The scheduler's state for one priority level of one queue (a row of the state table).

    ``vtime``: the largest owner tag started (new owners' jobs are tagged from it);
    ``start``/``finish``: the tier's last start tag and its finish tag (weighted level);
    ``served``: when the queue last started a job from this tier (turns between queues)."""

    queue: str
    priority: int
    vtime: float = 0.0
    start: float = 0.0
    finish: float = 0.0
    served: float = 0.0


class Head(Protocol):
    """A tagged, ready, queued job as the claim sees it."""

    @property
    def id(self) -> int: ...
    @property
    def queue(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def tag(self) -> float: ...
    @property
    def concurrency_key(self) -> str | None: ...
    @property
    def concurrency_limit(self) -> int | None: ...
    @property
    def rate_key(self) -> str | None: ...


H = TypeVar("H", bound=Head)


def owner_key(owner: str | None) -> str:
    return NO_OWNER if owner is None else owner


def tag_for(vtime: float, owner_next: float | None) -> float:
    """The tag of a job that becomes ready: the current round of its tier, or its owner's next
    round if the owner already has jobs waiting."""
    return vtime if owner_next is None else max(vtime, owner_next)


class FairBook:
    """Tier clocks and owners' next tags, in memory: the memory backend keeps one for good;
    the SQL backends load the rows a transaction needs into one and write back what changed."""

    def __init__(
        self,
        clocks: Iterable[TierClock] = (),
        owners: Mapping[tuple[str, int, str], float] | None = None,
    ) -> None:
        self.clocks: dict[tuple[str, int], TierClock] = {(c.queue, c.priority): c for c in clocks}
        self.owners: dict[tuple[str, int, str], float] = dict(owners or {})
        #: Owners whose next tag and tiers whose clock changed (to write back).
        self.owners_changed: set[tuple[str, int, str]] = set()
        self.clocks_changed: set[tuple[str, int]] = set()

    def clock(self, queue: str, priority: int) -> TierClock:
        return self.clocks.get((queue, priority)) or TierClock(queue, priority)

    def tag(self, queue: str, priority: int, owner: str | None) -> float:
        """Tag a job that becomes ready now, and move its owner's next tag past it."""
        key = (queue, priority, owner_key(owner))
        tag = tag_for(self.clock(queue, priority).vtime, self.owners.get(key))
        self.owners[key] = tag + OWNER_STEP
        self.owners_changed.add(key)
        return tag

    def start(
        self,
        heads: Mapping[tuple[str, int], Sequence[H]],
        limit: int,
        weights: Weights,
        now: float,
        running: Mapping[str, int] | None = None,
        queues: Collection[str] | None = None,
        budgets: Mapping[str, int] | None = None,
    ) -> list[H]:
        """:func:`choose_starts` over this book's clocks (of ``queues``, or all), updating them."""
        clocks = [c for c in self.clocks.values() if queues is None or c.queue in queues]
        chosen, changed = choose_starts(clocks, heads, limit, weights, now, running, budgets)
        for clock in changed:
            self.clocks[(clock.queue, clock.priority)] = clock
            self.clocks_changed.add((clock.queue, clock.priority))
        return chosen

    def idle_owners(self) -> list[tuple[str, int, str]]:
        """Owners whose next tag is behind their tier's virtual time: forgetting them changes
        no tag (purge deletes their rows)."""
        return [k for k, t in self.owners.items() if t <= self.clock(k[0], k[1]).vtime]


def claim_time(clocks: Iterable[TierClock], now: float) -> float:
    """The time a claim records as its jobs' start: ``now``, or, if a claim of these queues
    (from another process, whose ``now`` was read later but whose commit came first) already
    started a job later than that, just after it. So, per queue, ``started_at`` follows the
    order in which claims were committed, the order this policy decided."""
    return max([now, *(c.served for c in clocks)])


def choose_starts(
    clocks: Iterable[TierClock],
    heads: Mapping[tuple[str, int], Sequence[H]],
    limit: int,
    weights: Weights,
    now: float,
    running: Mapping[str, int] | None = None,
    budgets: Mapping[str, int] | None = None,
) -> tuple[list[H], list[TierClock]]:
    """Pick up to ``limit`` jobs to start, in order, and return the changed clocks.

    ``heads[(queue, priority)]`` are that tier's first claimable jobs in ``(tag, id)`` order;
    ``clocks`` every tier clock of the queues the worker serves (missing ones start at zero).
    ``running`` counts running jobs per concurrency key: a job whose key is at its limit is
    skipped (it keeps its place). ``budgets`` are the starts each rate key may still have
    (:mod:`quart_jobs.rate`): a job whose key has none left is skipped the same way."""
    state = {(c.queue, c.priority): c for c in clocks}
    for q, p in heads:
        state.setdefault((q, p), TierClock(q, p))
    busy = dict(running or {})
    if budgets:  # a rate key's spent budget counts as busy: one test for both kinds of key
        busy.update({_RATED + key: -n for key, n in budgets.items()})
    cursor = {k: 0 for k in heads}
    changed: set[tuple[str, int]] = set()
    chosen: list[H] = []
    stamp = max([now, *(c.served for c in state.values())])
    tiers: dict[str, list[tuple[str, int]]] = {}  # the tiers of each queue (fixed in the loop)
    for key in state:
        tiers.setdefault(key[0], []).append(key)
    while len(chosen) < limit:
        pick = _next_tier(state, heads, cursor, weights, busy, tiers)
        if pick is None:
            break
        (queue, priority), start, job = pick
        clock = state[(queue, priority)]
        stamp += 1e-6
        state[(queue, priority)] = TierClock(
            queue,
            priority,
            max(clock.vtime, job.tag),
            start,
            start + weights.step(priority),
            stamp,
        )
        changed.add((queue, priority))
        if job.concurrency_key is not None:
            busy[job.concurrency_key] = busy.get(job.concurrency_key, 0) + 1
        if job.rate_key is not None:
            busy[_RATED + job.rate_key] = busy.get(_RATED + job.rate_key, 0) + 1
        chosen.append(job)
    return chosen, [state[k] for k in sorted(changed)]


def _next_tier(
    state: Mapping[tuple[str, int], TierClock],
    heads: Mapping[tuple[str, int], Sequence[H]],
    cursor: dict[tuple[str, int], int],
    weights: Weights,
    busy: Mapping[str, int],
    tiers: Mapping[str, Sequence[tuple[str, int]]],
) -> tuple[tuple[str, int], float, H] | None:
    """The tier (and its job) that starts next, advancing past jobs blocked by their key.
    ``tiers`` lists the keys of ``state`` by queue."""
    by_queue: dict[str, list[tuple[str, int]]] = {}
    for key in heads:
        job = _first_startable(heads[key], cursor, key, busy)
        if job is not None:
            by_queue.setdefault(key[0], []).append(key)
    if not by_queue:
        return None
    if len(by_queue) == 1:
        (queue,) = by_queue
    else:
        queue = min(by_queue, key=lambda q: (max(state[k].served for k in tiers[q]), q))
    vclock = max(state[k].start for k in tiers[queue])

    starts = {key: max(vclock, state[key].finish) for key in by_queue[queue]}
    first = min(starts.values())
    # The smallest start tag goes. Equal tags (within rounding) go to a strict level, then to
    # the level served least recently: a weight of 9 means at most 9 starts in a row while a
    # weight-1 level waits.
    chosen_key = min(
        (key for key, start in starts.items() if start - first <= 1e-9 * max(1.0, abs(first))),
        key=lambda k: (0 if math.isinf(weights.weight(k[1])) else 1, state[k].served, k[1]),
    )
    best = (starts[chosen_key], chosen_key[1])
    job = heads[chosen_key][cursor[chosen_key]]
    cursor[chosen_key] += 1
    return chosen_key, best[0], job


def _first_startable(
    jobs: Sequence[H],
    cursor: dict[tuple[str, int], int],
    key: tuple[str, int],
    busy: Mapping[str, int],
) -> H | None:
    while cursor[key] < len(jobs):
        job = jobs[cursor[key]]
        if not blocked(job, busy):
            return job
        cursor[key] += 1
    return None


#: Where a rate key's spent budget is kept among the busy counts (minus the budget left).
_RATED = "\0rate:"


def blocked(job: Head, busy: Mapping[str, int]) -> bool:
    """Whether ``job``'s concurrency key already has ``concurrency_limit`` jobs running, or
    its rate key has no start left in this claim's budget."""
    if job.rate_key is not None and busy.get(_RATED + job.rate_key, 0) >= 0:
        return True
    if job.concurrency_key is None or job.concurrency_limit is None:
        return False
    return busy.get(job.concurrency_key, 0) >= job.concurrency_limit
