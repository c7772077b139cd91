#!/usr/bin/env bash
# Every gate a change must pass: formatting, lint, types, then the whole test suite.
# Under CI=true, PostgreSQL and Redis are started when installed but down, and tests that need
# them fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

start_services() {
  if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0
    sleep 1
  done
}
install_system_tools() {
  # docker-compose validates docker-compose.yml in the tests (no Docker engine is needed).
  if ! command -v docker-compose >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
      >/dev/null 2>&1 || echo "warning: could not install docker-compose"
  fi
  # Debian's Chromium drives the review page's browser tests (Playwright never downloads one).
  if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
      >/dev/null 2>&1 || echo "warning: could not install chromium"
  fi
}
if [ "${CI:-}" = "true" ]; then start_services; install_system_tools; fi

echo "== ruff format --check"; $BIN/ruff format --check .
echo "== ruff check"; $BIN/ruff check .
echo "== mypy --strict samdsk app workers"; $BIN/mypy samdsk app workers
echo "== pytest"
$BIN/python -m pytest "$@"
