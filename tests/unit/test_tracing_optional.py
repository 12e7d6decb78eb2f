"""Tracing is optional: without ``quart_jobs.otel.JobsInstrumentor().instrument()`` the
library never imports OpenTelemetry, and it runs where OpenTelemetry is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A job enqueued and run by a worker on the memory backend; prints the OpenTelemetry modules
# that got imported. ``BLOCK`` makes ``import opentelemetry`` fail, as when it is not installed.
SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    if BLOCK:
        sys.modules["opentelemetry"] = None
    from quart_jobs import Jobs, JobState

    async def add(a, b):
        return a + b

    async def main():
        async with Jobs("memory://") as jobs:
            jobs.register(add, name="add")
            job = await jobs.enqueue("add", 2, 3)
            async with jobs.run_worker(poll_interval=0.01):
                while (await jobs.get(job.id)).state is not JobState.SUCCEEDED:
                    await asyncio.sleep(0.01)
            done = await jobs.get(job.id)
            print(done.result, done.trace_context)

    asyncio.run(main())
    print(sorted(m for m, v in sys.modules.items() if m.startswith("opentelemetry") and v))
    """
)


def run(block: bool) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"BLOCK = {block}\n{SCRIPT}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_jobs_run_without_importing_opentelemetry() -> None:
    assert run(block=False) == ["5 None", "[]"]


def test_jobs_run_where_opentelemetry_is_not_installed() -> None:
    assert run(block=True) == ["5 None", "[]"]


def test_the_instrumentation_says_what_to_install_when_opentelemetry_is_missing() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            'import sys; sys.modules["opentelemetry"] = None\nimport quart_jobs.otel',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'quart-jobs[otel]'" in done.stderr
