"""Statements written once render for each dialect: placeholders change outside quoted text
only, and each dialect's slots are filled from its own row."""

from __future__ import annotations

import pytest

from quart_jobs.backends.shared_sql import jobs
from quart_jobs.backends.shared_sql.dialect import render


def test_placeholders_become_percent_s_outside_quotes_only() -> None:
    rendered = render(jobs.RECOVER_EXPIRED, "postgresql")
    assert "COALESCE(worker, '?')" in rendered
    assert "THEN CAST(%s AS DOUBLE PRECISION)" in rendered and "lease_expires_at < %s" in rendered
    assert render("SELECT 'a%' LIKE ?", "postgresql") == "SELECT 'a%' LIKE %s"
    assert render(jobs.RECOVER_EXPIRED, "sqlite") == jobs.RECOVER_EXPIRED


def test_slots_take_each_dialects_text() -> None:
    statement = "SELECT id FROM qj_jobs{due} WHERE run_at <= ? LIMIT ?{skip_locked}"
    assert render(statement, "sqlite") == (
        "SELECT id FROM qj_jobs INDEXED BY qj_jobs_due WHERE run_at <= ? LIMIT ?"
    )
    assert render(statement, "postgresql") == (
        "SELECT id FROM qj_jobs WHERE run_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED"
    )


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'mysql'"):
        render("SELECT 1", "mysql")
