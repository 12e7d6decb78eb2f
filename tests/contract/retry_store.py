"""The store of a retry-policy test, for ``quart-jobs --app tests.contract.retry_store:jobs``:
the URL (and PostgreSQL schema) the test wrote its jobs to, from the environment."""

from __future__ import annotations

import os

from quart_jobs import Jobs

_schema = os.environ.get("RETRY_STORE_SCHEMA")
jobs = Jobs(os.environ["RETRY_STORE_URL"], backend_options={"schema": _schema} if _schema else None)
