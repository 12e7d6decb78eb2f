"""One quart-jobs W1 SQLite round (FULL), for a profiler to look at.

    py-spy record --threads --idle --format raw -o var/w1.txt -- \\
        .venv/bin/python -m bench.profile_w1 20000 e2e
    .venv/bin/python -m bench.profile_w1 20000 e2e --pyinstrument   # the event-loop thread only

Phases: ``enqueue`` (one producer, no worker), ``drain`` (worker against that backlog) or
``e2e`` (worker running while one producer enqueues); ``all`` runs the three.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from .common import Config
from .w1_throughput import qj_sqlite


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="quart-jobs-profile-") as tmp:
        cfg = Config(rounds=1, workdir=Path(tmp))
        t0 = time.perf_counter()
        phases = await qj_sqlite(cfg, n, "FULL")
        total = time.perf_counter() - t0
    print(
        f"n={n}: enqueue {n / (phases.enqueue or 1):,.0f}/s, drain {n / (phases.drain or 1):,.0f}"
        f"/s, e2e {n / (phases.e2e or 1):,.0f}/s, total {total:.1f}s"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    if "--pyinstrument" in sys.argv:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
        profiler.start()
        asyncio.run(main(count))
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        asyncio.run(main(count))
