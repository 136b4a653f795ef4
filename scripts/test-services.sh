#!/usr/bin/env bash
# Makes sure every service the test suite talks to responds on loopback, starting the ones that
# do not: Redis (6379), PostgreSQL (5432) and moto, the AWS API emulator, in a virtualenv under
# .venv/moto. Installs the npm dependencies first when node_modules is missing or stale. Safe to
# run again: services that already respond are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT="${REKEY_TEST_MOTO_PORT:-5055}"
MOTO_VERSION="5.2.5"
mkdir -p .rekey

log() { printf 'test-services: %s\n' "$*"; }

# A fresh clone has no node_modules: install exactly what the lockfile pins.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing dependencies with npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

wait_for() {  # wait_for NAME COMMAND...: retries COMMAND for up to 30 s
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$name did not answer within 30 s"; return 1
}

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi

if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:5432"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi

if ! .venv/moto/bin/python -c "import moto" >/dev/null 2>&1; then
  log "creating .venv/moto with moto[server]==$MOTO_VERSION"
  python3 -m venv .venv/moto
  .venv/moto/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" \
    2>.rekey/pip.log || { cat .rekey/pip.log; exit 1; }
fi

if ! curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
  log "starting moto on 127.0.0.1:$MOTO_PORT with request authentication"
  # Zero unauthenticated requests: every call must be signed by a key that exists in moto. The test
  # setup opens a short unauthenticated window through /moto-api/reset-auth to create its admin.
  INITIAL_NO_AUTH_ACTION_COUNT=0 nohup .venv/moto/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" \
    >.rekey/moto.log 2>&1 &
  echo $! >.rekey/moto.pid
  wait_for moto curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/"
fi
log "Redis, PostgreSQL and moto answer"
