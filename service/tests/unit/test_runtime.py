"""The process settings of ``orders serve`` and ``orders worker`` (order_service.runtime)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from order_service.runtime import GC_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_what_exists_and_raises_the_youngest_threshold() -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc()
    assert gc.get_freeze_count() > 0  # the imports are out of the collector's sight
    assert gc.get_threshold() == (GC_THRESHOLD, older, oldest)
    assert gc.isenabled()


@pytest.mark.usefixtures("restore_gc")
def test_cyclic_garbage_made_after_tuning_is_still_collected() -> None:
    tune_gc()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2
