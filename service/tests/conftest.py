"""The order service's tests run with the library's shared fixtures: a controllable clock and
a fresh PostgreSQL schema."""

from __future__ import annotations

from tests.conftest import clock, postgres_schema

__all__ = ["clock", "postgres_schema"]
