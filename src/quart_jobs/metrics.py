"""Prometheus metrics: what this process did with jobs, and what the queue holds right now.

    metrics = JobMetrics(jobs)          # counts events from now on, in its own registry
    register_metrics(app, jobs)         # the same, plus ``GET /metrics`` on a Quart app

Two kinds of numbers, with different scopes:

* **Counters and histograms** count the events of *this process* (jobs it enqueued, started,
  finished; run and wait times of the jobs its workers ran). Sum them over all processes:
  ``sum by (tier) (rate(quart_jobs_succeeded_total[5m]))``. The counters are labelled by task
  and tier, the wait and run histograms by tier and queue: every label is a name the
  application chose (tasks, queues) or one of a few tiers, so the series stay bounded. No
  label names an owner (a customer): the dashboard lists the owners who waited longest.
* **Gauges** (queued and running jobs by tier, oldest waiting job per tier) are read from the
  database, so every process reports the same, correct, queue-wide values however many
  processes share it. Aggregate them with ``max``, never ``sum``. They come from the partial
  indexes of the live jobs (:meth:`~quart_jobs.backends.Backend.queue_gauges`), never from a
  scan of the finished ones, and are cached for ``max_age`` seconds (default 5): however often
  and by however many clients ``/metrics`` is scraped, the database sees at most one refresh
  per ``max_age``, and concurrent scrapes share it (single flight). Finished jobs are counted by
  the counters, not by a gauge.
* ``quart_jobs_workers`` (live workers in the store's registry, every process) and
  ``quart_jobs_unserved_jobs{queue,task}`` (ready jobs that no live worker may claim: they stay
  queued) come with the same refresh: a read of the small registry table and one of the
  ready-jobs index. Alert on ``max(quart_jobs_unserved_jobs) > 0``.
* ``quart_jobs_queue_paused{queue}``: 1 while a queue is paused (it starts nothing), 0 for the
  queues this app's tasks and the live workers use; same refresh, a read of a tiny table.
* ``quart_jobs_waiting_jobs{queue,reason}``: jobs that are not starting, by queue and the
  first reason that holds them (``dependency``, ``not_due``, ``paused``, ``unserved``,
  ``rate_limit``, ``concurrency``: :meth:`.OperatorStore.waiting_jobs`), each job counted
  once; every reason of the queues above is reported (0 when none), so the labels stay
  bounded: queues times 6 reasons. Same refresh: a few seeks and capped range counts.
* ``token``: when set, ``GET /metrics`` needs ``Authorization: Bearer <token>`` (else 401).

Each :class:`JobMetrics` has its own :class:`~prometheus_client.CollectorRegistry` (not the
global one), so several apps in one process (tests) do not clash.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from quart import Quart, Response, jsonify, request
from quart_schema import hide

from .jobs import Jobs
from .models import (
    DEFAULT_QUEUE,
    Job,
    JobState,
    Stats,
    Tier,
    UnservedTask,
    Waiting,
    WaitReason,
    WorkerRecord,
)

#: The states the depth gauge reports (finished jobs are the counters' business).
LIVE_STATES = (JobState.QUEUED, JobState.RUNNING)

#: Seconds a gauge snapshot is served before the next scrape refreshes it.
DEFAULT_MAX_AGE = 5.0

log = logging.getLogger("quart_jobs.metrics")

NAMESPACE = "quart_jobs"

#: Events counted per task and tier, with their help text.
COUNTED_EVENTS: dict[str, str] = {
    "enqueued": "Jobs enqueued by this process.",
    "started": "Attempts started by this process's workers.",
    "succeeded": "Jobs that succeeded in this process's workers.",
    "failed": "Jobs that failed for good (out of attempts) in this process's workers.",
    "retried": "Attempts that failed and were scheduled to run again.",
    "cancelled": "Jobs cancelled (queued jobs by this process, running ones by its workers).",
}

RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WAIT_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

#: The tiers always reported by the gauges (0 when empty), so a series never vanishes.
KNOWN_TIERS = tuple(int(t) for t in Tier)


#: The directory of ``prometheus_client``'s multiprocess mode: set (before the processes
#: start) where several processes serve one ``/metrics``.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class QueueCollector(Collector):
    """Gauges from the latest :class:`Stats` snapshot (set by :meth:`JobMetrics.refresh`)."""

    def __init__(self) -> None:
        self.stats: Stats | None = None
        self.workers: list[WorkerRecord] = []
        self.unserved: list[UnservedTask] = []
        #: Paused queues, and the queues reported at 0 (so a resumed queue's series goes to 0
        #: rather than vanishing): operator-chosen names, a bounded set.
        self.paused: set[str] = set()
        self.queues: set[str] = set()
        self.waiting = Waiting()
        self.now = 0.0
        self.up = False

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            f"{NAMESPACE}_store_up",
            "1 when the job store answered the last scrape's queries, else 0.",
        )
        up.add_metric([], 1.0 if self.up else 0.0)
        yield up
        if self.stats is None or not self.up:
            return
        stats = self.stats
        tiers = sorted({p for _, p in stats.counts} | set(KNOWN_TIERS))
        depth = GaugeMetricFamily(
            f"{NAMESPACE}_queue_depth",
            "Queued and running jobs in the database by tier (queue-wide, at most max_age old).",
            labels=["state", "tier"],
        )
        for priority in tiers:
            for state in LIVE_STATES:
                depth.add_metric(
                    [state.value, Tier.name_of(priority)], stats.count(state, priority)
                )
        yield depth
        oldest = GaugeMetricFamily(
            f"{NAMESPACE}_oldest_waiting_seconds",
            "Age of the oldest queued job per tier, in seconds (0 when none waits).",
            labels=["tier"],
        )
        for priority in tiers:
            enqueued = stats.oldest_queued.get(priority)
            age = 0.0 if enqueued is None else max(0.0, self.now - enqueued)
            oldest.add_metric([Tier.name_of(priority)], age)
        yield oldest
        workers = GaugeMetricFamily(
            f"{NAMESPACE}_workers",
            "Live workers in the store's registry, every process (queue-wide).",
        )
        workers.add_metric([], len(self.workers))
        yield workers
        unserved = GaugeMetricFamily(
            f"{NAMESPACE}_unserved_jobs",
            "Ready jobs that no live worker may claim (no worker has the task registered for "
            "that queue): they stay queued. Absent when every ready job is served.",
            labels=["queue", "task"],
        )
        for item in self.unserved:
            unserved.add_metric([item.queue, item.task], item.count)
        yield unserved
        paused = GaugeMetricFamily(
            f"{NAMESPACE}_queue_paused",
            "1 for a paused queue (it starts no job until resumed), 0 for a queue that runs: "
            "the queues of this app's tasks and live workers, and any paused since this "
            "process started.",
            labels=["queue"],
        )
        for queue in sorted(self.queues | self.paused):
            paused.add_metric([queue], 1.0 if queue in self.paused else 0.0)
        yield paused
        waiting = GaugeMetricFamily(
            f"{NAMESPACE}_waiting_jobs",
            "Jobs that are not starting, by queue and the first reason that holds them "
            "(each job counted once; a capped count: at least this many).",
            labels=["queue", "reason"],
        )
        counted = {queue for queue, _ in self.waiting.counts}
        for queue in sorted(self.queues | counted):
            for reason in WaitReason:
                waiting.add_metric(
                    [queue, reason.value], self.waiting.counts.get((queue, reason), 0)
                )
        yield waiting


class JobMetrics:
    """Prometheus metrics for one :class:`Jobs`; hooks itself into its events."""

    def __init__(
        self,
        jobs: Jobs,
        registry: CollectorRegistry | None = None,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.max_age = max_age
        self._monotonic = monotonic
        self._refreshed_at: float | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.counters: dict[str, Counter] = {
            event: Counter(
                f"{NAMESPACE}_{event}",
                help_text,
                ["task", "tier"],
                registry=self.registry,
            )
            for event, help_text in COUNTED_EVENTS.items()
        }
        self.run_seconds = Histogram(
            f"{NAMESPACE}_run_seconds",
            "Run time of one attempt, from start to its outcome, by tier and queue.",
            ["tier", "queue"],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.wait_seconds = Histogram(
            f"{NAMESPACE}_wait_seconds",
            "Time a job waited: start minus the later of its enqueue time and its run_at, "
            "by tier and queue.",
            ["tier", "queue"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.queue = QueueCollector()
        self.registry.register(self.queue)
        self._merged: CollectorRegistry | None = None
        jobs.event_hooks.append(self.on_event)

    def on_event(self, event: str, job: Job, elapsed: float | None) -> None:
        """Count one job event (a :attr:`Jobs.event_hooks` hook)."""
        counter = self.counters.get(event)
        if counter is not None:
            counter.labels(job.task, job.tier).inc()
        if event == "started" and job.started_at is not None:
            ready = max(job.enqueued_at, job.run_at)
            wait = max(0.0, job.started_at - ready)
            self.wait_seconds.labels(job.tier, job.queue).observe(wait)
        elif elapsed is not None and event != "requeued":
            self.run_seconds.labels(job.tier, job.queue).observe(elapsed)

    async def refresh(self) -> None:
        """Read the queue-wide gauges from the database (a failure reports the store down)."""
        try:
            stats = await self.jobs.operator.queue_gauges()
            workers, unserved = await self.jobs.serving()
            paused = await self.jobs.paused()
            waiting = await self.jobs.operator.waiting_jobs(self.jobs.clock(), workers)
        except Exception as exc:
            log.error("metrics: cannot read queue statistics: %s", exc)
            self.queue.up = False
            return
        finally:
            self._refreshed_at = self._monotonic()
        self.queue.stats = stats
        self.queue.workers, self.queue.unserved = workers, unserved
        self.queue.paused = paused
        self.queue.waiting = waiting
        self.queue.queues |= paused | self.jobs.registry.queues(DEFAULT_QUEUE)
        self.queue.queues |= {q for w in workers for q in w.queues or ()}
        self.queue.now = self.jobs.clock()
        self.queue.up = True

    async def fresh_enough(self) -> None:
        """Make the gauges at most ``max_age`` old: concurrent callers share one refresh, and
        the refresh runs as its own task, so a scrape that goes away does not cancel it."""
        at = self._refreshed_at
        if at is not None and self._monotonic() - at < self.max_age:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())
        await asyncio.shield(self._refreshing)

    async def render(self) -> bytes:
        """The Prometheus text exposition (gauges at most ``max_age`` seconds old)."""
        await self.fresh_enough()
        return generate_latest(self._exposed())

    def _exposed(self) -> CollectorRegistry:
        """What a scrape shows: this process's registry; under ``PROMETHEUS_MULTIPROC_DIR``
        (several processes behind one port, as ``orders serve`` with ``WEB_PROCESSES`` > 1
        sets it) the counters and histograms of every process sharing that directory, summed
        (``prometheus_client``'s multiprocess mode), and this process's gauges."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return self.registry
        if self._merged is None:
            merged = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(merged, directory)  # type: ignore[no-untyped-call]
            merged.register(self.queue)
            self._merged = merged
        return self._merged


def register_metrics(
    app: Quart,
    jobs: Jobs,
    *,
    path: str = "/metrics",
    registry: CollectorRegistry | None = None,
    token: str | None = None,
    max_age: float = DEFAULT_MAX_AGE,
) -> JobMetrics:
    """Count ``jobs``' events and serve them at ``path`` on ``app``. With ``token``, a scrape
    must send ``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials:
    ...}`` in the scrape config); without it the path is open, so keep it off the internet."""
    metrics = JobMetrics(jobs, registry, max_age=max_age)
    app.extensions["quart_jobs_metrics"] = metrics

    async def metrics_endpoint() -> Response:
        if token and not _bearer_matches(token):
            response = jsonify(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "send the metrics token as 'Authorization: Bearer <token>'",
                    }
                }
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        body = await metrics.render()
        return Response(body, content_type=CONTENT_TYPE_LATEST, headers=_NO_STORE)

    metrics_endpoint.__doc__ = "Prometheus metrics (text exposition format)."
    # Plain text for Prometheus, not part of the JSON API: kept out of the OpenAPI document.
    app.add_url_rule(path, "quart_jobs_metrics", hide(metrics_endpoint), methods=["GET"])
    return metrics


def _bearer_matches(token: str) -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    sent = value.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, token.encode())


_NO_STORE = {"Cache-Control": "no-store"}

__all__ = ["JobMetrics", "QueueCollector", "register_metrics"]
