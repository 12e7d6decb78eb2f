"""The product's benchmark workloads run: each one that needs nothing beyond the dev extra, at
the smallest sizes (``python -m bench --smoke``), without the peer libraries, gives rows of
numbers (and no row that failed)."""

from __future__ import annotations

import math
from pathlib import Path

import bench.common
import pytest
from bench.common import Config
from bench.suite import WORKLOADS, Workload

from tests.conftest import TEST_POSTGRES_URL, require_postgres

SMOKED = [w for w in WORKLOADS.values() if not w.needs]


@pytest.mark.postgres
@pytest.mark.parametrize("workload", SMOKED, ids=[w.name for w in SMOKED])
async def test_workload_gives_rows_of_numbers(
    workload: Workload, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_postgres()  # every smoked workload has PostgreSQL rows (W4 has nothing else)
    monkeypatch.setattr(bench.common, "PG_ADMIN_URL", TEST_POSTGRES_URL)
    monkeypatch.setattr(bench.common, "PG_BASE", TEST_POSTGRES_URL.rsplit("/", 1)[0] + "/")
    lines: list[str] = []
    cfg = Config(rounds=1, smoke=True, peers=False, workdir=tmp_path)

    rows = await workload.run(cfg, lines.append)

    failed = [f"{m.system}: {m.reason}" for m in rows if not m.ok]
    assert not failed, "\n".join([*failed, *lines])
    assert rows, lines
    for m in rows:
        assert m.values, m
        assert all(math.isfinite(v) and v >= 0 for v in m.values), m
