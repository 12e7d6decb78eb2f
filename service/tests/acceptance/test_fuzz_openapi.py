"""schemathesis against ``/openapi.json`` of a real ``orders serve``: no 500, every response
matches the documented schema, status codes and headers, schema-valid orders are accepted and
invalid ones rejected. Bounded (``FUZZ_EXAMPLES`` per operation, a fixed ``FUZZ_SEED``) so
CI stays under two minutes. Each failure it ever found has a regression test in
service/tests/integration/test_http_hostile.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from .procs import ADMIN_TOKEN, BIN, VIP_KEY, running

pytestmark = pytest.mark.acceptance
ROOT = str(Path(__file__).resolve().parents[3])

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "40")
SEED = os.environ.get("FUZZ_SEED", "20261125")
# Each documented API with its own credentials: the customers' (demo VIP key) and the admin's,
# and the admin's without any (its 401s, then the 429 of a client throttled for them).
APIS: dict[str, tuple[str, str | None]] = {
    "orders": (r"^/(orders|healthz|readyz)", f"Bearer {VIP_KEY}"),
    "admin": (r"^/admin/api/", f"Bearer {ADMIN_TOKEN}"),
    "admin-without-token": (r"^/admin/api/", None),
}


def status_counts(har: Path) -> tuple[Counter[int], Counter[str]]:
    """Responses by status, and 4xx answers by their error code, from schemathesis's HAR."""
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        status = int(entry["response"]["status"])
        statuses[status] += 1
        if 400 <= status < 500:
            try:
                code = json.loads(entry["response"]["content"].get("text") or "")["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "(not the JSON error body)"
            codes[f"{status} {code}"] += 1
    return statuses, codes


@pytest.mark.timeout(180)
@pytest.mark.parametrize("api", sorted(APIS))
def test_schemathesis_finds_nothing(tmp_path: Path, api: str) -> None:
    operations, credentials = APIS[api]
    env = {"SHUTDOWN_TIMEOUT": "1", "WORKER_CONCURRENCY": "8"}
    # A schema-valid POST /orders may be refused with 422 idempotency_key_reused: the fuzzer
    # sends one Idempotency-Key with different bodies, which the API documents as a 422.
    (tmp_path / "schemathesis.toml").write_text(
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]\n'
    )
    with running(tmp_path, f"sqlite:///{tmp_path}/f.sqlite3", env=env) as svc:
        report = tmp_path / "report"
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "run",
                f"{svc.url}/openapi.json",
                *(["--header", f"Authorization: {credentials}"] if credentials else []),
                "--checks",
                "all",
                # Every phase, the stateful one (chains of calls, following Location) included.
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--include-path-regex",
                operations,
                "--max-examples",
                EXAMPLES,
                "--seed",
                SEED,
                "--request-timeout",
                "10",
                "--report",
                "json,har",
                "--report-json-path",
                str(report / "report.json"),
                "--report-har-path",
                str(report / "requests.har"),
            ],
            capture_output=True,
            text=True,
            timeout=170,
            cwd=tmp_path,
            # Valid ?wait=S values are shortened (a long poll would take the whole budget).
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "service.tests.acceptance.fuzz_hooks",
                "PYTHONPATH": ROOT,
            },
        )
        service_log = svc.output()
    assert (report / "report.json").exists(), result.stdout[-6000:] + result.stderr[-2000:]
    summary = json.loads((report / "report.json").read_text())
    statuses, codes = status_counts(report / "requests.har")
    print(
        f"\nschemathesis ({api}): {summary.get('test_cases', {}).get('generated')} cases, "
        f"{sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}"
    )
    for code, n in sorted(codes.items()):
        print(f"  {code}: {n}")
    print(f"  5xx: {sum(n for s, n in statuses.items() if s >= 500)}")
    if credentials is None:  # the throttle was met, and answered as documented
        assert codes["429 too_many_attempts"] > 0, codes
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert not [s for s in statuses if s >= 500], statuses
    assert "Traceback" not in service_log, service_log[-4000:]
