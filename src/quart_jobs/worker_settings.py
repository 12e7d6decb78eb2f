"""How a worker runs: :class:`WorkerSettings` (slots, lease, heartbeat, polling, shutdown
timeout, retry backoff, tier weights, queues, burst mode)."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import fairness
from .backends.base import queue_names
from .retries import RetryPolicy


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker runs: pass them as ``Jobs(worker_settings=...)`` or as overrides to
    :meth:`Jobs.run_worker` (``jobs.run_worker(concurrency=8)``).

    :ivar concurrency: Jobs run at once (async ones on the loop, sync ones in as many threads).
    :ivar lease_seconds: How long a claimed job stays this worker's without a heartbeat; a
        worker that died loses its jobs to another after this long.
    :ivar heartbeat_interval: Seconds between heartbeats (default: a third of the lease).
    :ivar poll_interval: Seconds between looks for jobs that another process enqueued (jobs
        enqueued by this process wake the worker at once).
    :ivar weights: The priority levels' shares when several have jobs waiting
        (:class:`~quart_jobs.fairness.Weights`; default VIP 9 starts per regular start).
    :ivar queues: The queues this worker claims from (``None``: every queue).
    :ivar shutdown_timeout: Seconds that running jobs get to finish when the worker stops;
        then they are cancelled and queued again without charging the attempt.
    :ivar retry: The backoff between attempts of a failing job.
    """

    concurrency: int = 4
    lease_seconds: float = 30.0
    heartbeat_interval: float | None = None  # default: a third of the lease
    poll_interval: float = 0.5
    shutdown_timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    weights: fairness.Weights = field(default_factory=fairness.Weights)
    queues: tuple[str, ...] | None = None
    #: Burst mode (``jobs.drain``): claim until no job is ready and none runs, then stop.
    burst: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", fairness.Weights.of(self.weights))
        if self.queues is not None:
            object.__setattr__(self, "queues", queue_names(self.queues))
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        if self.lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, not {self.lease_seconds}")

    @property
    def beat_every(self) -> float:
        """Seconds between heartbeats."""
        return self.heartbeat_interval or self.lease_seconds / 3
