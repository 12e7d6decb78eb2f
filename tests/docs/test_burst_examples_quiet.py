"""A worker that ends because its burst is done has ended normally: the docs' examples that
drain (``jobs.drain()``) or run a burst worker (``burst=True``), run as pasted, log nothing at
ERROR or above."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_examples import ALL_BLOCKS, DOCS, Block, blocks_of, files_before, run_in

#: Runs ``example.py`` with logging showing every record's level on stderr.
WITH_LEVELS = (
    "import logging, runpy; "
    "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s'); "
    "runpy.run_path('example.py', run_name='__main__')"
)

BURSTS = [
    block
    for block in [*ALL_BLOCKS, *blocks_of(DOCS.parent / "README.md")]
    if block.runnable
    and block.file_name is None
    and ("drain(" in block.code or "burst=True" in block.code)
]


def test_the_docs_have_burst_examples() -> None:
    assert {b.page for b in BURSTS} >= {"queues.md", "periodic.md"}


@pytest.mark.parametrize("block", BURSTS, ids=lambda b: b.id)
def test_a_burst_example_logs_no_error(block: Block, tmp_path: Path) -> None:
    for name, code in files_before(block).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code, encoding="utf-8")
    (tmp_path / "example.py").write_text(block.code, encoding="utf-8")
    result = run_in(tmp_path, "-c", WITH_LEVELS)
    assert result.returncode == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("ERROR", "CRITICAL"))]
    assert errors == [], result.stderr
