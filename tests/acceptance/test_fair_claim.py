"""Routing and concurrency keys through ``quart-jobs worker`` processes: two task sets on one
database don't touch each other's jobs; a concurrency key holds across processes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .procs import BIN, wait_until

pytestmark = pytest.mark.acceptance


# --- routing and concurrency keys: quart-jobs worker processes --------------------------------

APPS = {
    "app_a.py": """
        import time
        from quart_jobs import Jobs
        jobs = Jobs("{url}")

        @jobs.task(name="a.work")
        def work(n):
            return n
        """,
    "app_b.py": """
        from quart_jobs import Jobs
        jobs = Jobs("{url}")

        @jobs.task(name="b.report", queue="reports")
        def report(n):
            return n
        """,
    "app_k.py": """
        import time
        from quart_jobs import Jobs
        jobs = Jobs("{url}")

        @jobs.task(name="k.slow")
        def slow():
            start = time.time()
            time.sleep(0.3)
            return [start, time.time()]
        """,
}


Spec = tuple[str, list[str]]


@contextlib.contextmanager
def workers(tmp_path: Path, *specs: Spec) -> Iterator[list[subprocess.Popen[bytes]]]:
    with contextlib.ExitStack() as stack:
        procs = []
        names = [f"worker-{n}-{app.split(':')[0]}.log" for n, (app, _) in enumerate(specs)]
        for name, (app, args) in zip(names, specs, strict=True):
            log = stack.enter_context(open(tmp_path / name, "wb"))
            procs.append(
                subprocess.Popen(
                    [str(BIN / "quart-jobs"), "--app", app, "worker", *args],
                    cwd=tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
            )
        try:
            yield procs
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(30) for proc in procs]
        logs = [(tmp_path / name).read_text() for name in names]
        assert codes == [0] * len(specs), logs


def enqueue(tmp_path: Path, script: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return [int(x) for x in json.loads(out.stdout)]


def job_states(url: str, ids: list[int]) -> list[tuple[str, int, object]]:
    import asyncio

    from quart_jobs import Jobs

    async def read() -> list[tuple[str, int, object]]:
        async with Jobs(url) as jobs:
            found = [await jobs.get(i) for i in ids]
            return [(j.state.value, j.attempts, j.result) for j in found]

    return asyncio.run(read())


@pytest.fixture
def apps(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/jobs.sqlite3"
    for name, source in APPS.items():
        (tmp_path / name).write_text(textwrap.dedent(source.format(url=url)))
    return url


def test_two_task_sets_on_one_database_run_only_their_own_jobs(tmp_path: Path, apps: str) -> None:
    ids = enqueue(
        tmp_path,
        """
        import asyncio, json
        import app_a, app_b

        async def main():
            async with app_a.jobs as a, app_b.jobs as b:
                ids = [(await a.enqueue("a.work", i)).id for i in range(10)]
                ids += [(await b.enqueue("b.report", i)).id for i in range(10)]
            print(json.dumps(ids))

        asyncio.run(main())
        """,
    )
    # Worker A has a.work only; worker B has b.report and serves the reports queue only.
    with workers(tmp_path, ("app_a:jobs", []), ("app_b:jobs", ["--queues", "reports"])):
        assert wait_until(lambda: all(s == "succeeded" for s, _, _ in job_states(apps, ids)), 30)
    # Nobody ran a job it did not know: each ran once, first time.
    assert [(a, r) for _, a, r in job_states(apps, ids)] == [(1, i % 10) for i in range(20)]


def test_a_concurrency_key_holds_across_two_worker_processes(tmp_path: Path, apps: str) -> None:
    ids = enqueue(
        tmp_path,
        """
        import asyncio, json
        import app_k

        async def main():
            async with app_k.jobs as jobs:
                keyed = jobs.options(concurrency_key="customer:42", concurrency_limit=1)
                print(json.dumps([(await keyed.enqueue("k.slow")).id for _ in range(6)]))

        asyncio.run(main())
        """,
    )
    with workers(
        tmp_path, ("app_k:jobs", ["--concurrency", "3"]), ("app_k:jobs", ["--concurrency", "3"])
    ):
        assert wait_until(lambda: all(s == "succeeded" for s, _, _ in job_states(apps, ids)), 60)
    spans = sorted(tuple(r) for _, _, r in job_states(apps, ids))  # type: ignore[arg-type]
    # One at a time, though six slots in two processes were free.
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 0.01, spans
