#!/bin/bash
# The intake flood on PostgreSQL: `orders serve` on a fresh database, `wrk -t1 -c64 -d10s`
# posting orders of 0 s (W3's shape), then the jobs by state the moment wrk ends (how many
# completed during the flood). The server at PGURL must let this user create databases.
#
#   bench/tools/pg_flood.sh [KEY=VALUE ...]     e.g. WEB_PROCESSES=2
#
# (bench/tools/intake_flood.py is the same on SQLite, with W3's accepted-and-completed rate.)
set -euo pipefail
cd "$(dirname "$0")/../.."
PGURL=${PGURL:-postgresql://127.0.0.1:5432}
DB=qj_pg_flood
PGOPTIONS="-c client_min_messages=warning" psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp)
LUA=$(mktemp --suffix=.lua)
env DATABASE_URL="$PGURL/$DB" ORDERS_DEMO=1 MAX_QUEUED=10000000 MAX_QUEUED_PER_CUSTOMER=10000000 \
    "$@" .venv/bin/orders serve --port "$PORT" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$LOG" "$LUA"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "localhost:$PORT/healthz" && break; sleep 0.2; done
sleep 1
cat >"$LUA" <<'L'
wrk.method = "POST"
wrk.body = '{"items": [{"sku": "bench-1", "quantity": 1}], "processing_seconds": 0}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-regular-key"
L
wrk -t1 -c64 -d10s --latency -s "$LUA" "http://127.0.0.1:$PORT/orders" | grep -E "Requests/sec|99%|Non-2xx"
echo "jobs by state: $(psql -At "$PGURL/$DB" -c "SELECT state, count(*) FROM qj_jobs GROUP BY state" | tr '\n' ' ')"
