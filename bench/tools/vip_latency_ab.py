"""W2 before and after: the same W2 rounds on an older release of the library and on this
checkout, interleaved, in one sitting (a one-off comparison, not part of ``python -m bench``).

    .venv/bin/python -m bench.tools.vip_latency_ab --before 8f26c42 --rounds 6

The older release's ``src/`` is exported with ``git archive`` into a temporary directory (not
a worktree; the venv's dependencies serve both) and put first on ``PYTHONPATH`` of a child
process. Every round is one child per system, each a fresh interpreter, in the same order
every round, so that both versions pay the same start-up and see the same machine:
``asyncio.PriorityQueue`` (the ceiling), the older release (its defaults), this checkout with
the default weights and with strict priority. Each child runs W2's burst and single-VIP
arrivals (``bench/workloads/vip_latency.py``) and prints its waits as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from ..common import Config
from ..workloads import vip_latency as w2

ROOT = Path(__file__).resolve().parent.parent

#: child name: (function in w2_latency, runs on the older release)
CHILDREN = {
    "asyncio.PriorityQueue (ceiling)": ("priority_queue", False),
    "before: quart-jobs SQLite FULL": ("quart_jobs_sqlite", True),
    "now: quart-jobs SQLite FULL, VIP weight 9": ("quart_jobs_sqlite", False),
    "now: quart-jobs SQLite FULL, strict priority": ("quart_jobs_sqlite_strict", False),
}


def export(commit: str, into: Path) -> Path:
    """``src/`` of ``commit`` under ``into``; the directory to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def child(function: str, regular: int, workdir: Path) -> None:
    """One round of one system, burst then single: prints ``{"burst": [...], "single": [...]}``
    (seconds) and the library's path, to show which release ran."""
    func = getattr(w2, function)
    cfg = Config(workdir=workdir)

    async def both() -> dict[str, list[float]]:
        return {
            "burst": await func(cfg, regular, False),
            "single": await func(cfg, regular, True),
        }

    waits = asyncio.run(both())
    import quart_jobs

    print(json.dumps({**waits, "library": str(Path(quart_jobs.__file__).parent)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="8f26c42", help="the older commit (default 8f26c42)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--regular", type=int, default=2_000, help="regular backlog")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="w2-before-after-") as tmp:
        if args.child:
            child(args.child, args.regular, Path(tmp))
            return
        old_src = export(args.before, Path(tmp))
        now_src = ROOT / "src"
        results: dict[str, dict[str, list[float]]] = {
            n: {"burst": [], "single": []} for n in CHILDREN
        }
        for rnd in range(args.rounds):
            for name, (function, before) in CHILDREN.items():
                env = {**os.environ, "PYTHONPATH": str(old_src if before else now_src)}
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.tools.vip_latency_ab",
                        "--child",
                        function,
                        "--regular",
                        str(args.regular),
                    ],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                data = json.loads(out.strip().splitlines()[-1])
                expected = old_src if before else now_src
                assert data["library"].startswith(str(expected)), data["library"]
                for kind in ("burst", "single"):
                    median = statistics.median(data[kind]) * 1000
                    results[name][kind].append(median)
                print(
                    f"round {rnd + 1}/{args.rounds} {name}: burst median "
                    f"{results[name]['burst'][-1]:.1f} ms, single median "
                    f"{results[name]['single'][-1]:.2f} ms",
                    flush=True,
                )
    ceiling = results["asyncio.PriorityQueue (ceiling)"]
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"\nW2, {args.rounds} rounds interleaved, {args.regular} regular queued; ", end="")
    print(f"before = {args.before}, now = {head} (and uncommitted changes, if any)")
    print("system | burst VIP wait: median of the rounds' medians (range) | x ceiling, median")
    print("of the rounds' ratios (range) | single VIP: the same")
    for name, kinds in results.items():
        cells = []
        for kind in ("burst", "single"):
            values, base = kinds[kind], ceiling[kind]
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            cells.append(
                f"{statistics.median(values):.2f} ms ({min(values):.2f}-{max(values):.2f}) | "
                f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )
        print(f"{name} | {cells[0]} | {cells[1]}")
    older = results["before: quart-jobs SQLite FULL"]
    for name, kinds in results.items():
        if name.startswith("now"):
            paired = {
                k: statistics.median(v / b for v, b in zip(kinds[k], older[k], strict=True))
                for k in ("burst", "single")
            }
            print(
                f"{name} / before, round by round (median): burst {paired['burst']:.2f}x, "
                f"single {paired['single']:.2f}x"
            )


if __name__ == "__main__":
    main()
