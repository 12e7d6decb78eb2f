"""Paused queues, the same on both SQL backends: a row of ``qj_queue_pauses`` per paused queue
(resuming deletes it). Claims and ``next_run_at`` skip the tiers of a paused queue with one
primary-key probe per tier row (:data:`NOT_PAUSED`, in :mod:`.fair` and :mod:`.jobs`)."""

from __future__ import annotations

#: True for a tier row ``t`` of ``qj_fair_tiers`` whose queue is not paused.
NOT_PAUSED = "NOT EXISTS (SELECT 1 FROM qj_queue_pauses AS p WHERE p.queue = t.queue)"
#: Pause a queue; changes no row when it is paused already (its first pause time is kept).
PAUSE = (
    "INSERT INTO qj_queue_pauses (queue, paused_at) VALUES (?, ?) ON CONFLICT (queue) DO NOTHING"
)
RESUME = "DELETE FROM qj_queue_pauses WHERE queue = ?"
PAUSED = "SELECT queue, paused_at FROM qj_queue_pauses ORDER BY queue"
