"""The retry decision on plain values: one table row per rule, and random backoffs (hypothesis)
that either give their delay or fall back to the worker's backoff with a warning."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quart_jobs import ConfigurationError, Jobs
from quart_jobs.models import Why
from quart_jobs.retries import (
    Decision,
    Fail,
    Retry,
    RetryPolicy,
    after_failure,
    next_run_after_failure,
)

NOW = 1_000.0
#: The worker's backoff in this table: always 2 s.
DEFAULT = RetryPolicy(base=2.0, max_delay=2.0, min_delay=2.0)
NETWORK = (ConnectionError, TimeoutError)


def linear(n: int) -> float:
    return 10.0 * n


# exception, attempts, max_attempts, retry_on, backoff -> decision
TABLE: list[tuple[str, BaseException, int, int, Any, Any, Decision]] = [
    (
        "plain failure, attempts left",
        ValueError("x"),
        1,
        3,
        None,
        None,
        Decision(1002.0, Why.BACKOFF),
    ),
    ("plain failure, last attempt", ValueError("x"), 3, 3, None, None, Decision(None, Why.GAVE_UP)),
    ("task's backoff", ValueError("x"), 2, 3, None, linear, Decision(1020.0, Why.BACKOFF)),
    ("in retry_on", ConnectionError(), 1, 3, NETWORK, None, Decision(1002.0, Why.BACKOFF)),
    (
        "subclass in retry_on",
        ConnectionResetError(),
        1,
        3,
        NETWORK,
        None,
        Decision(1002.0, Why.BACKOFF),
    ),
    (
        "timeout is a TimeoutError",
        TimeoutError(),
        1,
        3,
        NETWORK,
        None,
        Decision(1002.0, Why.BACKOFF),
    ),
    (
        "in retry_on, last attempt",
        ConnectionError(),
        3,
        3,
        NETWORK,
        None,
        Decision(None, Why.GAVE_UP),
    ),
    ("not in retry_on", ValueError("x"), 1, 3, NETWORK, None, Decision(None, Why.NOT_RETRYABLE)),
    (
        "empty retry_on retries nothing",
        ConnectionError(),
        1,
        3,
        (),
        None,
        Decision(None, Why.NOT_RETRYABLE),
    ),
    ("Retry(delay)", Retry(delay=30), 1, 3, None, None, Decision(1030.0, Why.RETRY_REQUESTED)),
    ("Retry(delay=0)", Retry(delay=0), 1, 3, None, None, Decision(1000.0, Why.RETRY_REQUESTED)),
    (
        "Retry ignores retry_on",
        Retry(delay=30),
        1,
        3,
        NETWORK,
        None,
        Decision(1030.0, Why.RETRY_REQUESTED),
    ),
    (
        "Retry() takes the backoff",
        Retry(),
        2,
        3,
        None,
        linear,
        Decision(1020.0, Why.RETRY_REQUESTED),
    ),
    ("Retry, last attempt", Retry(delay=30), 3, 3, None, None, Decision(None, Why.GAVE_UP)),
    ("Fail, attempts left", Fail("no"), 1, 5, None, None, Decision(None, Why.FAILED_BY_TASK)),
    ("Fail, with retry_on", Fail("no"), 1, 5, (Fail,), None, Decision(None, Why.FAILED_BY_TASK)),
    ("a BaseException", KeyboardInterrupt(), 1, 3, None, None, Decision(1002.0, Why.BACKOFF)),
]


@pytest.mark.parametrize(
    ("exc", "attempts", "max_attempts", "retry_on", "backoff", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_after_failure_table(
    exc: BaseException,
    attempts: int,
    max_attempts: int,
    retry_on: Any,
    backoff: Any,
    expected: Decision,
) -> None:
    decision = after_failure(
        exc, attempts, max_attempts, NOW, retry_on=retry_on, backoff=backoff, default=DEFAULT
    )
    assert decision == expected


@given(
    attempt=st.integers(1, 50),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(10**6), 10**6),
        st.none(),
        st.text(max_size=3),
        st.booleans(),
    ),
)
def test_any_backoff_value_gives_its_delay_or_the_default_with_one_warning(
    attempt: int, value: Any
) -> None:
    decision = after_failure(
        OSError(), attempt, attempt + 1, NOW, backoff=lambda n: value, default=DEFAULT
    )
    usable = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )
    assert decision.why is Why.BACKOFF
    if usable:
        assert decision == Decision(NOW + float(value), Why.BACKOFF)
    else:
        assert decision.run_at == NOW + 2.0
        assert decision.warning is not None and f"backoff({attempt})" in decision.warning


@given(attempts=st.integers(1, 20), extra=st.integers(0, 20), seed=st.integers(0, 2**32))
def test_the_default_backoff_stays_within_its_policy(attempts: int, extra: int, seed: int) -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, max_delay=60.0)
    decision = after_failure(
        ValueError(), attempts, attempts + extra, NOW, default=policy, rng=random.Random(seed)
    )
    if extra == 0:
        assert decision == Decision(None, Why.GAVE_UP)
    else:
        assert decision.run_at is not None and decision.why is Why.BACKOFF
        assert 0 <= decision.run_at - NOW <= min(60.0, 2.0 ** (attempts - 1))
        assert decision.warning is None


def test_a_raising_backoff_is_a_warning_not_a_crash() -> None:
    def broken(n: int) -> float:
        raise RuntimeError("oops")

    decision = after_failure(ValueError(), 1, 3, NOW, backoff=broken, default=DEFAULT)
    assert decision.run_at == NOW + 2.0
    assert decision.warning == "backoff(1) raised RuntimeError: oops"


@pytest.mark.parametrize("delay", [-1, math.nan, math.inf, "30", True])
def test_retry_refuses_a_delay_that_is_no_finite_number_of_seconds(delay: Any) -> None:
    with pytest.raises(ValueError, match=r"Retry\(delay=.*\): the delay must be a finite number"):
        Retry(delay=delay)


def test_retry_and_fail_describe_themselves() -> None:
    assert str(Retry(delay=30)) == "Retry(delay=30)"
    assert str(Retry(1.5, "slow down")) == "Retry(delay=1.5, message='slow down')"
    assert str(Fail("card declined")) == "card declined"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_on": ConnectionError}, "retry_on must be a tuple of exception classes"),
        ({"retry_on": [ConnectionError]}, "retry_on must be a tuple of exception classes"),
        ({"retry_on": (ConnectionError, "TimeoutError")}, "retry_on must be a tuple"),
        ({"retry_on": (int,)}, "retry_on must be a tuple of exception classes"),
        ({"backoff": 5}, "backoff must be a callable"),
    ],
)
def test_malformed_retry_options_are_refused_where_written_naming_the_task(
    options: dict[str, Any], message: str
) -> None:
    jobs = Jobs("memory://")

    def charge() -> None: ...

    charge.__qualname__ = "charge"  # a module-level name, as a task needs
    with pytest.raises(ConfigurationError, match=message) as caught:
        jobs.task(**options)(charge)
    assert "task 'tests.unit.test_retries.charge'" in str(caught.value)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=1, factor=2, max_delay=10)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the jitter spreads over the whole range


def test_no_retry_once_out_of_attempts() -> None:
    policy = RetryPolicy(base=1)
    assert next_run_after_failure(3, 3, NOW, policy) is None
    run_at = next_run_after_failure(1, 3, NOW, policy, random.Random(1))
    assert run_at is not None and NOW <= run_at <= NOW + 1
