# TACore: broker, workers, data agent, recorder and monitoring sidecar (`tacore serve`), or any one role
# (`tacore worker --connect ...`). Two stages: the build stage has the C compiler that setup.py's mypyc
# build of the broker core needs; the runtime stage has only the installed virtualenv, and runs as an
# unprivileged user.
#   docker build -t tacore .
#   docker run --rm -p 127.0.0.1:8000:8000 -e API_KEY=... tacore                 # streams from Binance
#   docker run --rm -p 127.0.0.1:8000:8000 -e API_KEY=... tacore tacore serve --demo   # simulated exchange
# compose.yaml runs it with PostgreSQL, Redis and a ClickHouse server (docs/deploy.md).

FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY tacore ./tacore
COPY workers ./workers
COPY clients ./clients
# [postgres]: the driver of DATABASE_URL=postgresql+psycopg2://... (compose.yaml's request log)
RUN python -m venv /opt/tacore \
 && /opt/tacore/bin/pip install --no-cache-dir '.[postgres]' \
 && /opt/tacore/bin/python -c "import tacore.broker.broker as b; assert b.__file__.endswith('.so'), b.__file__"

FROM python:3.11-slim AS runtime
# /keys: where a container is given key files (compose mounts the worker key there); owned by tacore, so a
# named volume mounted on it starts out writable by the user the image runs as.
RUN groupadd --system --gid 10001 tacore \
 && useradd --system --uid 10001 --gid tacore --home-dir /data --create-home --shell /usr/sbin/nologin tacore \
 && install -d -m 0700 -o tacore -g tacore /keys
COPY --from=build /opt/tacore /opt/tacore
COPY config /app/config
WORKDIR /app
# Reachable from outside the container: bind everything, with keys on for the broker's ports (its own
# processes use local keys made in /data/keys at first start; give outside clients and workers keys with
# `docker exec CONTAINER tacore keys generate NAME ...`, docs/security.md), and the sidecar then needs API_KEY.
ENV PATH=/opt/tacore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BIND_ADDRESS=0.0.0.0 \
    BROKER_CURVE=true \
    API_HOST=0.0.0.0 \
    DATA_DIR=/data \
    DATABASE_PATH=/data/tacoreservice.db \
    LOG_DIR=/data/logs
USER tacore
VOLUME ["/data"]
EXPOSE 5555 5556 5557 8000
# Healthy = a real request goes through the broker to a worker and back (marked as TACore's own call,
# so health checks stay out of the user figures); the sidecar answering /health alone would not show that.
# With BROKER_CURVE on it presents the local-admin key that `tacore serve` makes in /data/keys. A container
# running `tacore worker` has no broker inside: compose.yaml gives it `tacore worker-health` instead.
HEALTHCHECK --interval=15s --timeout=10s --start-period=90s --retries=3 \
  CMD ["tacore", "call", "--internal", "--timeout-ms", "3000", "--retries", "0", "health.check"]
STOPSIGNAL SIGTERM
CMD ["tacore", "serve"]
