"""Maintenance: the work that keeps the store healthy beside claiming, one task per module.

- :mod:`.lease_recovery`: jobs whose lease expired (their worker died or hung) go back to the
  queue; every worker does it every half lease.
- :mod:`.worker_registry`: each worker's row in the store's live-workers registry, written
  before its first claim, refreshed every half lease and deleted when it stops.
- :mod:`.unserved_check`: a worker warns about ready jobs of its queues that no live worker
  serves.
- :mod:`.retention`: finished jobs older than the retention period are deleted.

A worker's heartbeat loop (:mod:`quart_jobs.heartbeat`) runs the first three when they are
due; retention runs in its own loop, one per process (:meth:`Jobs.start_retention`).
"""
