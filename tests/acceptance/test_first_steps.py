"""A new user's first steps as real processes in an empty directory: the README's example,
``python tasks.py`` then ``quart-jobs --app tasks:jobs worker``, and start-up mistakes, each
answered with one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .procs import wait_until

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.acceptance

TASKS = """
import asyncio
from quart_jobs import Jobs

jobs = Jobs("sqlite:///var/app.sqlite3")

@jobs.task
async def hello(name: str) -> str:
    print("hello", name, flush=True)
    return name

@jobs.task(max_attempts=1)
def explode() -> None:
    raise ValueError("the poison pill")

async def main() -> None:
    async with jobs:
        print((await jobs.enqueue(hello, "world")).task)
        print((await jobs.enqueue(explode)).task)

if __name__ == "__main__":
    asyncio.run(main())
"""

APP = """
from quart import Quart
from quart_jobs import QuartJobs

jobs = QuartJobs()

@jobs.task
async def ping() -> str:
    return "pong"

def create_app(url: str = "sqlite:///var/factory.sqlite3") -> Quart:
    app = Quart(__name__)
    app.config["QUART_JOBS_DATABASE_URL"] = url
    jobs.init_app(app)
    return app
"""


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUART", "DATABASE_URL"))}
    env.pop("PYTHONPATH", None)  # modules come from the working directory, as for a user
    return env | {"PYTHONUNBUFFERED": "1"}


def run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean_env()
    )


def qj(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, str(BIN / "quart-jobs"), *args)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a refused start: exit 2, one line, no traceback; the line."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def states(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT task, state FROM qj_jobs").fetchall())


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (example,) = [b for b in blocks if "run_worker" in b and "asyncio.run(" in b][:1]
    return str(example)


def test_the_readme_library_example_runs_as_pasted_in_an_empty_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "example.py").write_text(readme_example())
    result = run(tmp_path, sys.executable, "example.py")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.count("receipt for") == 2
    assert (tmp_path / "var" / "app.sqlite3").is_file()


def test_a_script_enqueues_and_a_worker_from_its_directory_runs_it(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    enqueued = run(tmp_path, sys.executable, "tasks.py")
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stdout.split() == ["tasks.hello", "tasks.explode"]  # not __main__.hello
    db = tmp_path / "var" / "app.sqlite3"
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(BIN / "quart-jobs"), "--app", "tasks:jobs", "worker"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )
    try:
        done = {"tasks.hello": "succeeded", "tasks.explode": "failed"}
        assert wait_until(lambda: states(db) == done, timeout=30), states(db)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(30)
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert code == 0, output
    assert "hello world" in output
    # The failure is in the worker's log with no logging set up by the user.
    assert any("the poison pill" in line for line in output.splitlines()), output


@pytest.mark.parametrize("form", ["factory", "factory:create_app", "factory:create_app()"])
def test_app_forms_as_quart_loads_them(tmp_path: Path, form: str) -> None:
    (tmp_path / "factory.py").write_text(APP)
    migrated = qj(tmp_path, "--app", form, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "var" / "factory.sqlite3").is_file()  # the app's URL, not the default
    stats = qj(tmp_path, "--app", form, "stats", "--json")
    assert stats.returncode == 0, stats.stderr


def test_a_factory_with_arguments(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text(APP)
    result = qj(tmp_path, "--app", 'factory:create_app("sqlite:///var/other.sqlite3")', "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "other.sqlite3").is_file()


def test_inspecting_a_missing_sqlite_file_is_an_error_that_creates_nothing(
    tmp_path: Path,
) -> None:
    line = one_line_error(qj(tmp_path, "--database-url", "sqlite:///typo.sqlite3", "stats"))
    assert "typo.sqlite3" in line and "does not exist" in line
    for command in (["list"], ["show", "1"], ["retry", "--failed"], ["cancel", "1"]):
        one_line_error(qj(tmp_path, "--database-url", "sqlite:///typo.sqlite3", *command))
    assert not (tmp_path / "typo.sqlite3").exists()
    # The same through an app whose store was never created.
    (tmp_path / "factory.py").write_text(APP)
    line = one_line_error(run(tmp_path, str(BIN / "quart"), "--app", "factory", "jobs", "stats"))
    assert "factory.sqlite3" in line
    assert list(tmp_path.iterdir()) == [tmp_path / "factory.py"]


def test_migrate_creates_the_file_and_its_directories(tmp_path: Path) -> None:
    result = qj(tmp_path, "--database-url", "sqlite:///new/dir/jobs.sqlite3", "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "dir" / "jobs.sqlite3").is_file()


def test_a_worker_without_tasks_refuses_to_start(tmp_path: Path) -> None:
    for args in (["worker"], ["--database-url", "sqlite:///var/jobs.sqlite3", "worker"]):
        line = one_line_error(qj(tmp_path, *args))
        assert "--app MODULE:ATTR" in line
    (tmp_path / "empty.py").write_text("from quart_jobs import Jobs\njobs = Jobs()\n")
    assert "no tasks" in one_line_error(qj(tmp_path, "--app", "empty:jobs", "worker"))
    assert list(tmp_path.iterdir()) == [tmp_path / "empty.py"]  # no store was created


MODULES = {
    "raises.py": "import os\nvalue = 1 / 0\n",
    "syntax.py": "def broken(:\n",
    "needs.py": "import a_module_nobody_installed\n",
    "plain.py": "from quart import Quart\napp = Quart(__name__)\nnumber = 3\n",
}


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--app", "nowhere", "stats"], "no module named 'nowhere'"),
        (["--app", "raises", "stats"], "ZeroDivisionError: division by zero at "),
        (["--app", "syntax:jobs", "stats"], "SyntaxError"),
        (["--app", "needs", "worker"], "No module named 'a_module_nobody_installed'"),
        (["--app", "plain:number", "stats"], "not a Jobs, a Quart app"),
        (["--app", "plain:missing", "stats"], "has no 'missing'"),
        (["--app", "plain", "stats"], "does not use quart-jobs"),
        (["--database-url", "mysql://db/x", "stats"], "unknown scheme"),
        (["--database-url", "sqlite:///raises.py/x.sqlite3", "migrate"], "raises.py is a file"),
        (["--database-url", "postgresql://nobody@127.0.0.1:1/x", "migrate"], "cannot connect"),
        (["stats"], "--database-url"),
    ],
)
def test_start_up_mistakes_are_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    for name, source in MODULES.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    assert said in one_line_error(qj(tmp_path, *args))
