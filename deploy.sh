#!/usr/bin/env bash
# Deploy TACore on this machine, as local processes or as the compose deployment (docs/deploy.md).
#
#   ./deploy.sh [local] up [tacore serve flags]   install into .venv (again if the checkout changed) and start
#                                                  `tacore serve` in the background; prints its ready banner
#   ./deploy.sh [local] down                       orderly stop (SIGTERM), waits for the closing summary
#   ./deploy.sh [local] status                     running or not, and a health.check through the broker
#   ./deploy.sh [local] logs [-n N]                follow logs/tacoreservice.log
#   ./deploy.sh [local] upgrade                    git pull --ff-only, reinstall, restart
#
#   ./deploy.sh compose up [--scale worker=N]      docker compose up -d --build (needs .env: cp .env.example .env)
#   ./deploy.sh compose down|status|logs [svc]|upgrade
#
# Local settings come from config/config.yaml and the environment (README, "Settings"); the pid, the
# install stamp and serve's output live in run/.
set -euo pipefail
cd "$(dirname "$0")"

MODE=local
case "${1:-}" in
  local|compose) MODE=$1; shift ;;
esac
ACTION=${1:-help}
[ $# -gt 0 ] && shift

RUN_DIR=run
PID_FILE=$RUN_DIR/tacore.pid
STAMP=.venv/.tacore-source
OUT=$RUN_DIR/serve.out

die() { echo "deploy.sh: $*" >&2; exit 1; }

# -- local --------------------------------------------------------------------------------------------
source_fingerprint() {
  # Everything an install takes from the checkout; a non-editable install runs a copy, so any change here
  # (a pull, an edit) means the installed code is stale.
  find pyproject.toml setup.py tacore workers clients -type f \
       ! -path '*/__pycache__/*' ! -name '*.so' ! -name '_compiled.json' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

ensure_installed() {
  local want have=""
  want=$(source_fingerprint)
  [ -f "$STAMP" ] && have=$(cat "$STAMP")
  if [ -x .venv/bin/tacore ] && [ "$want" = "$have" ]; then
    return
  fi
  if [ -x .venv/bin/tacore ]; then
    echo "deploy.sh: the checkout changed since the last install; reinstalling"
  else
    echo "deploy.sh: installing into .venv (compiles the broker core: about a minute)"
  fi
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q .
  echo "$want" > "$STAMP"
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid=$(cat "$PID_FILE")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

local_up() {
  if pid=$(running_pid); then
    die "tacore is already running (pid $pid); ./deploy.sh down first, or ./deploy.sh upgrade"
  fi
  ensure_installed
  mkdir -p "$RUN_DIR"
  : > "$OUT"
  nohup .venv/bin/tacore serve "$@" >> "$OUT" 2>&1 &
  echo $! > "$PID_FILE"
  echo "deploy.sh: tacore serve started (pid $(cat "$PID_FILE")); waiting for every component to answer"
  for _ in $(seq 1 240); do
    if grep -q " is ready (" "$OUT"; then
      sed -n '/^─/,/^─/p' "$OUT"
      return
    fi
    running_pid >/dev/null || { cat "$OUT" >&2; die "tacore serve exited during start-up"; }
    sleep 0.5
  done
  die "not ready after 120 s; see $OUT and logs/tacoreservice.log"
}

local_down() {
  local pid
  if ! pid=$(running_pid); then
    echo "deploy.sh: tacore is not running"
    rm -f "$PID_FILE"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      awk '/^TACore stopped/ {p = 1} p && !/^(TACore stopped|  )/ {exit} p' "$OUT"
      return
    fi
    sleep 0.5
  done
  die "pid $pid still running after 60 s"
}

local_status() {
  local pid
  if pid=$(running_pid); then
    echo "tacore serve is running (pid $pid)"
    # the children and theirs: most processes are forked by "tacore: process-template", a child itself
    local children
    children=$(pgrep -d, -P "$pid" || true)
    ps -o pid=,args= --ppid "$pid${children:+,$children}" 2>/dev/null | sed 's/^/  /' || true
    .venv/bin/tacore call --internal --retries 0 --timeout-ms 3000 health.check >/dev/null \
      && echo "health.check through the broker: ok" || echo "health.check through the broker: FAILED"
  else
    echo "tacore is not running"
    return 3
  fi
}

local_logs() {
  mkdir -p logs
  touch logs/tacoreservice.log
  tail -F "${@:--n50}" logs/tacoreservice.log
}

local_upgrade() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && git rev-parse --abbrev-ref '@{u}' >/dev/null 2>&1; then
    git pull --ff-only
  else
    echo "deploy.sh: no upstream branch to pull; upgrading to the checkout as it is"
  fi
  local was_running=0
  running_pid >/dev/null && was_running=1
  ensure_installed
  if [ "$was_running" = 1 ]; then
    local_down
    local_up "$@"
  fi
}

# -- compose ------------------------------------------------------------------------------------------
compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose "$@"
  else
    die "neither 'docker compose' nor 'docker-compose' is installed"
  fi
}

need_env() {
  [ -f .env ] || die "no .env: cp .env.example .env and set API_KEY, POSTGRES_PASSWORD, CLICKHOUSE_PASSWORD"
}

case "$MODE:$ACTION" in
  local:up) local_up "$@" ;;
  local:down) local_down ;;
  local:status) local_status ;;
  local:logs) local_logs "$@" ;;
  local:upgrade) local_upgrade "$@" ;;
  compose:up)
    need_env
    compose up -d --build "$@"
    compose ps
    echo "deploy.sh: the broker's keys are in the tacore-data volume: docker compose exec tacore tacore keys list" ;;
  compose:down) compose down "$@" ;;
  compose:status) compose ps "$@" ;;
  compose:logs) compose logs -f --tail=100 "$@" ;;
  compose:upgrade)
    need_env
    if git rev-parse --abbrev-ref '@{u}' >/dev/null 2>&1; then git pull --ff-only; fi
    compose build
    compose up -d "$@"   # recreates the containers whose image changed; volumes stay
    compose ps ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [ "$ACTION" = help ] || exit 2 ;;
esac
