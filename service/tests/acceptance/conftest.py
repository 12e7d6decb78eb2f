"""Acceptance fixtures of the order service: the library's fresh PostgreSQL database."""

from __future__ import annotations

from tests.acceptance.conftest import database

__all__ = ["database"]
