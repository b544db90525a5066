#!/usr/bin/env bash
# Deploy TACore on this machine.
#   ./deploy.sh            install into .venv and run `tacore serve` in the foreground (Ctrl-C stops it)
#   ./deploy.sh --demo     the same, with the exchange simulator streaming a few symbols
#   ./deploy.sh --docker   build the image and run it detached (needs a Docker engine and API_KEY)
set -euo pipefail
cd "$(dirname "$0")"

if [ "${1:-}" = "--docker" ]; then
  : "${API_KEY:?set API_KEY: the sidecar is reachable from outside the container}"
  docker build -t tacore:latest .
  docker rm -f tacore >/dev/null 2>&1 || true
  docker run -d --name tacore -e API_KEY -e REDIS_URL -e CLICKHOUSE_URL -e DATABASE_URL \
    -p 5555:5555 -p 5556:5556 -p 5557:5557 -p 8000:8000 -v tacore-data:/data tacore:latest
  echo "tacore running in container 'tacore': docker logs -f tacore"
  echo "its broker ports take keys only: docker exec tacore tacore keys generate NAME --role read (or --worker),"
  echo "then docker cp tacore:/data/keys/NAME.key_secret . and set CLIENT_KEY (or WORKER_KEY) to it (docs/security.md)"
  exit 0
fi

[ -x .venv/bin/tacore ] || { python3 -m venv .venv && .venv/bin/pip install -q .; }
exec .venv/bin/tacore serve "$@"
