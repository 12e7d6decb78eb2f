"""SQL shared by the SQLite and PostgreSQL backends (their placeholders differ: ``?``, ``%s``)."""

from __future__ import annotations

from typing import Any

from ..models import JobFilter


def filter_sql(flt: JobFilter, placeholder: str) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or ``""``) and its parameters for a :class:`JobFilter`."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("state", None if flt.state is None else flt.state.value),
        ("priority", flt.priority),
        ("task", flt.task),
        ("owner", flt.owner),
    ):
        if value is not None:
            clauses.append(f"{column} = {placeholder}")
            params.append(value)
    if flt.before_id is not None:
        clauses.append(f"id < {placeholder}")
        params.append(flt.before_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
