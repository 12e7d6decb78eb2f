"""Fairness, routing and concurrency keys through real processes.

``orders serve`` with one slot (SQLite and PostgreSQL): the VIP jump, carol's single order among
bob's backlog, the regular share under a VIP flood. ``quart-jobs worker`` processes: two task
sets on one database don't touch each other's jobs; a concurrency key holds across processes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .procs import BIN, REGULAR_KEY, VIP_KEY, auth, place, running, wait_until

pytestmark = pytest.mark.acceptance

CAROL_KEY = "demo-regular-key-2"


def ts(value: object) -> float:
    assert isinstance(value, str)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def orders_of(client: httpx.Client, ids: list[object], key: str) -> list[dict[str, object]]:
    return [client.get(f"/orders/{i}", headers=auth(key)).json() for i in ids]


def finished(client: httpx.Client, ids: list[object], key: str) -> bool:
    return all(o["status"] == "completed" for o in orders_of(client, ids, key))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/o.sqlite3"
    else:
        yield request.getfixturevalue("database")


def test_the_vip_jumps_and_carol_is_not_stuck_behind_bob(tmp_path: Path, url: str) -> None:
    with (
        running(tmp_path, url, env={"WORKER_CONCURRENCY": "1"}) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        bob = [place(client, REGULAR_KEY, processing_seconds=0.3)["id"] for _ in range(12)]
        assert wait_until(
            lambda: orders_of(client, bob[:1], REGULAR_KEY)[0]["status"] != "queued", 10
        )
        (alice,) = [place(client, VIP_KEY, processing_seconds=0.1)["id"]]
        (carol,) = [place(client, CAROL_KEY, processing_seconds=0.1)["id"]]
        assert wait_until(lambda: finished(client, bob, REGULAR_KEY), 60)
        bobs = orders_of(client, bob, REGULAR_KEY)
        a = orders_of(client, [alice], VIP_KEY)[0]
        c = orders_of(client, [carol], CAROL_KEY)[0]

    starts = sorted(
        [(ts(o["started_at"]), "bob") for o in bobs]
        + [
            (ts(a["started_at"]), "alice"),
            (ts(c["started_at"]), "carol"),
        ]
    )
    names = [name for _, name in starts]
    # bob's running order ends, then alice's starts, then carol's, at most one bob order apart.
    assert names.index("alice") <= 2
    assert names.index("carol") - names.index("alice") <= 2
    # bob's own orders keep their order.
    bob_starts = [ts(o["started_at"]) for o in bobs]
    assert bob_starts == sorted(bob_starts)
    print(
        f"\n[{url.split(':')[0]}] alice waited {ts(a['started_at']) - ts(a['created_at']):.2f}s, "
        f"carol {ts(c['started_at']) - ts(c['created_at']):.2f}s, behind 11 queued bob orders"
    )


def test_under_a_vip_flood_regular_orders_keep_their_share(tmp_path: Path, url: str) -> None:
    with (
        running(tmp_path, url, env={"WORKER_CONCURRENCY": "1"}) as svc,
        httpx.Client(base_url=svc.url, timeout=10) as client,
    ):
        regular = [place(client, REGULAR_KEY, processing_seconds=0.05)["id"] for _ in range(6)]
        vip = [place(client, VIP_KEY, processing_seconds=0.05)["id"] for _ in range(60)]
        assert wait_until(
            lambda: finished(client, regular, REGULAR_KEY) and finished(client, vip, VIP_KEY), 90
        )
        regs = orders_of(client, regular, REGULAR_KEY)
        vips = orders_of(client, vip, VIP_KEY)

    last_regular = max(ts(o["started_at"]) for o in regs)
    starts = sorted(
        [(ts(o["started_at"]), "r") for o in regs] + [(ts(o["started_at"]), "v") for o in vips]
    )
    before = "".join(kind for at, kind in starts if at <= last_regular)
    longest_vip_run = max(len(run) for run in before.split("r"))
    # While regular orders waited, VIP orders took at most VIP_WEIGHT (9) starts in a row.
    assert longest_vip_run <= 9, before
    share = before.count("r") / len(before)
    assert share >= 1 / 10 - 1e-9, before
    print(f"\n[{url.split(':')[0]}] regular share under the VIP flood: {share:.1%} ({before})")


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
        for n, (app, args) in enumerate(specs):
            log = stack.enter_context(open(tmp_path / f"worker-{n}.log", "wb"))
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
        logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(len(specs))]
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
