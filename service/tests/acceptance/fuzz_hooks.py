"""Schemathesis hooks for the fuzzing test (``SCHEMATHESIS_HOOKS``).

``GET /orders/{id}?wait=S`` rightly answers after up to 30 s when the order is not finished;
a fuzzer that sends hundreds of valid waits would spend its whole budget waiting. A valid
``wait`` (a number from 0 to 30) is shortened to at most 0.2 s before the request is sent;
invalid ones (negative, past 30, not a number) are sent as generated, to meet their 400.
"""

from __future__ import annotations

import math
from typing import Any

import schemathesis

LONGEST_WAIT = 0.2


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    query = case.query
    if not isinstance(query, dict) or "wait" not in query:
        return
    try:
        seconds = float(query["wait"])
    except (TypeError, ValueError):
        return
    if math.isfinite(seconds) and 0 <= seconds <= 30:
        query["wait"] = min(seconds, LONGEST_WAIT)
