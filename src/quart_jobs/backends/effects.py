"""A success's effects: the application's writes a task asked to commit with its success
(``current_job().succeed_with``), and how a store whose round cannot run them records them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable
from .running import running_job

if TYPE_CHECKING:
    from .base import Backend, BackendTransaction, Outcome


@dataclass(slots=True, eq=False)
class Effects:
    """The application's writes a task asked to commit with its success
    (:meth:`~quart_jobs.progress.RunningJob.succeed_with`): the store calls :attr:`run` in the
    transaction that records the success, after the success's lease was found held (never
    for a refused outcome). When :attr:`run` raises, nothing of it is kept: the store records
    :attr:`failed`'s outcome for the exception instead (in the same transaction) and sets
    :attr:`instead` to it, for the worker's log and events."""

    run: Callable[[BackendTransaction], None]
    failed: Callable[[BaseException], Outcome]
    #: Set by the store when :attr:`run` raised: the outcome it recorded instead.
    instead: Outcome | None = None
    #: Set by a store that committed them (with the success) ahead of its round.
    recorded: bool = False

    def fail(self, exc: BaseException) -> Outcome:
        """The outcome to record because :attr:`run` raised ``exc`` (kept in :attr:`instead`)."""
        self.instead = outcome = self.failed(exc)
        return outcome


def recorded_outcome(outcome: Outcome) -> Outcome:
    """The outcome a store recorded for ``outcome``: a failure instead of a success whose
    effects raised."""
    effects = outcome.effects
    return outcome if effects is None or effects.instead is None else effects.instead


async def record_effects_alone(
    store: Backend, outcomes: Sequence[Outcome], now: float
) -> tuple[Sequence[Outcome], list[bool | None]]:
    """For a store whose round does not run :class:`Effects` (its ``claim_round`` calls this
    first): record each success that carries them in a transaction of its own (its lease
    checked first, then its effects), before the round. Returns the outcomes left for the
    round (a failure in place of a success whose effects raised) and, for each outcome given,
    whether its lease was held (``None``: left for the round; see :func:`merge_held`).

    The transactions run at once (a round's successes need not wait for each other's commits)
    and count as processing, as a running job's own transactions do: a store that keeps
    connections free for processing (PostgreSQL, under a flood of intake) gives them one."""
    if all(o.effects is None for o in outcomes):
        return outcomes, []
    token = running_job.set(True)
    try:
        recorded = await asyncio.gather(
            *(_record(store, outcome, now) for outcome in outcomes), return_exceptions=True
        )
    finally:
        running_job.reset(token)
    rest: list[Outcome] = []
    early: list[bool | None] = []
    for result in recorded:
        if isinstance(result, BaseException):  # the store out of reach: the round is retried
            raise result
        held, left = result
        early.append(held)
        if left is not None:
            rest.append(left)
    return rest, early


async def _record(
    store: Backend, outcome: Outcome, now: float
) -> tuple[bool | None, Outcome | None]:
    """``(held, left for the round)`` for one outcome of :func:`record_effects_alone`."""
    effects = outcome.effects
    if effects is None:
        return None, outcome
    if effects.recorded:  # by an earlier try of a round that then failed
        return True, None
    try:
        await store.run_transaction(_with_effects(outcome, effects), now)
    except _LeaseLost:
        return False, None
    except EffectsFailed as failed:
        return None, effects.fail(failed.error)
    effects.recorded = True
    return True, None


class _LeaseLost(Exception):
    """Rolls back a success with effects whose lease was no longer held."""


class EffectsFailed(Exception):
    """Rolls back a success whose effects raised ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _with_effects(outcome: Outcome, effects: Effects) -> Callable[[BackendTransaction], None]:
    def run(tx: BackendTransaction) -> None:
        if not tx.finish(outcome):
            raise _LeaseLost
        run_effects(effects, tx)

    return run


def run_effects(effects: Effects, tx: BackendTransaction) -> None:
    """Run ``effects`` in ``tx``; what they raise becomes :class:`EffectsFailed` (the store
    being out of reach stays itself: the round is retried)."""
    effects.instead = None  # a round retried after the store was out of reach runs them again
    try:
        effects.run(tx)
    except BackendUnavailable:
        raise
    except Exception as exc:
        raise EffectsFailed(exc) from exc


def merge_held(early: Sequence[bool | None], held: Sequence[bool]) -> list[bool]:
    """Each outcome's ``held``: :meth:`Backend.record_effects_alone`'s answer where it gave
    one, the round's (for the outcomes left to it, in order) elsewhere."""
    if not early:
        return list(held)
    rest = iter(held)
    return [next(rest) if e is None else e for e in early]
