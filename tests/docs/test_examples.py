"""Every Python example in docs/*.md runs, as pasted, in an empty directory.

Conventions of the pages (the first line of a fenced ``python`` block decides):

- ``# not run: <reason>``: not run (another library's code, for comparison); it must compile.
- ``# file: NAME``: a file a reader saves; it is written into the directory of every later
  block of the same page. A file named ``test_*.py`` is also run, with pytest.
- anything else: saved as ``example.py`` and run with this venv's Python.

Each block runs in a fresh temporary directory as a subprocess and must exit with code 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
FILE_LINE = re.compile(r"#\s*file:\s*(\S+)")
NOT_RUN = re.compile(r"#\s*not run:\s*\S")
TIMEOUT = 90

#: Examples that show a known bug: (page, a line of the block) -> the bug. Strict: once the
#: bug is fixed the test fails as XPASS and the entry must go.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str

    @property
    def first_line(self) -> str:
        return self.code.split("\n", 1)[0].strip()

    @property
    def file_name(self) -> str | None:
        match = FILE_LINE.fullmatch(self.first_line)
        return match.group(1) if match else None

    @property
    def runnable(self) -> bool:
        if NOT_RUN.match(self.first_line):
            return False
        name = self.file_name
        return name is None or Path(name).name.startswith("test_")

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path.name, text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in FENCE.finditer(text)
    ]


ALL_BLOCKS = [block for page in sorted(DOCS.glob("*.md")) for block in blocks_of(page)]


def files_before(block: Block) -> dict[str, str]:
    """The ``# file:`` blocks of the same page above ``block``, by name (a later one wins)."""
    return {
        b.file_name: b.code
        for b in ALL_BLOCKS
        if b.page == block.page and b.line < block.line and b.file_name is not None
    }


def run_in(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "QUART"))}
    return subprocess.run(
        [sys.executable, *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _marks(block: Block) -> list[pytest.MarkDecorator]:
    for (page, line), reason in KNOWN_BUGS.items():
        if page == block.page and line in block.code:
            return [pytest.mark.xfail(strict=True, reason=reason)]
    return []


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id, marks=_marks(b)) for b in ALL_BLOCKS if b.runnable],
)
def test_example_runs(block: Block, tmp_path: Path) -> None:
    for name, code in files_before(block).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(code, encoding="utf-8")
    name = block.file_name
    if name is None:
        (tmp_path / "example.py").write_text(block.code, encoding="utf-8")
        result = run_in(tmp_path, "example.py")
    else:
        (tmp_path / name).write_text(block.code, encoding="utf-8")
        result = run_in(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", name)
    assert result.returncode == 0, (
        f"{block.id} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in ALL_BLOCKS if not b.runnable])
def test_example_not_run_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec")


def test_every_page_has_its_examples_collected() -> None:
    pages_with_python = {b.page for b in ALL_BLOCKS}
    assert {"getting-started.md", "quart.md", "testing.md", "migration.md"} <= pages_with_python


def _page_file(page: str, name: str) -> str:
    found = [b.code for b in ALL_BLOCKS if b.page == page and b.file_name == name]
    assert found, f"{page} has no `# file: {name}` block"
    return found[-1]


async def test_getting_started_worker_process(tmp_path: Path) -> None:
    """The "worker in its own process" steps: `python tasks.py`, then `quart-jobs … worker`."""
    import asyncio
    import signal

    from quart_jobs import Jobs

    (tmp_path / "tasks.py").write_text(_page_file("getting-started.md", "tasks.py"), "utf-8")
    enqueued = run_in(tmp_path, "tasks.py")
    assert enqueued.returncode == 0, enqueued.stderr
    assert "enqueued job 1" in enqueued.stdout
    command = Path(sys.executable).with_name("quart-jobs")
    worker = await asyncio.create_subprocess_exec(
        str(command),
        "--app",
        "tasks:jobs",
        "worker",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with Jobs(f"sqlite:///{tmp_path}/jobs.sqlite3") as jobs:
            job = await jobs.get(1)
            while not job.state.finished and worker.returncode is None:
                await asyncio.sleep(0.1)
                job = await jobs.get(1)
        assert worker.returncode is None, (await worker.communicate())[1].decode()
        assert (job.state, job.result) == ("succeeded", "said hello to world"), job.error
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.communicate(), timeout=30)
    assert worker.returncode == 0


def test_getting_started_quart_app_commands(tmp_path: Path) -> None:
    """The Quart section: the app serves a signup (through its test app), then
    `quart --app app jobs stats` reads the same store and shows the job succeeded."""
    (tmp_path / "app.py").write_text(_page_file("getting-started.md", "app.py"), "utf-8")
    page = [b for b in ALL_BLOCKS if b.page == "getting-started.md" and b.runnable]
    driver = next(b for b in page if "from app import app" in b.code)
    (tmp_path / "example.py").write_text(driver.code, "utf-8")
    served = run_in(tmp_path, "example.py")
    assert served.returncode == 0, served.stderr
    assert served.stdout.strip() == "app welcomes ada@example.com"
    quart = str(Path(sys.executable).with_name("quart"))
    stats = subprocess.run(
        [quart, "--app", "app", "jobs", "stats", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert stats.returncode == 0, stats.stderr
    assert '"succeeded": 1' in stats.stdout
