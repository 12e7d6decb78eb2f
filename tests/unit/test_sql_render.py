"""Statements written once render for PostgreSQL: placeholders change, quoted text does not."""

from __future__ import annotations

from quart_jobs.backends.shared_sql import jobs as sql


def test_placeholders_become_percent_s_outside_quotes_only() -> None:
    rendered = sql.render(sql.RECOVER_EXPIRED, "postgresql")
    assert "COALESCE(worker, '?')" in rendered
    assert "THEN CAST(%s AS DOUBLE PRECISION)" in rendered and "lease_expires_at < %s" in rendered
    assert sql.render("SELECT 'a%' LIKE ?", "postgresql") == "SELECT 'a%' LIKE %s"
    assert sql.render(sql.RECOVER_EXPIRED, "sqlite") == sql.RECOVER_EXPIRED
