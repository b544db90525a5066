# TACore in one container: broker, workers, data agent (embedded chDB), sidecar.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY tacore ./tacore
COPY workers ./workers
COPY clients ./clients
COPY config ./config
# A C compiler only while installing: setup.py compiles the broker's core with mypyc.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir . \
 && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
# Reachable from outside the container: bind everything, with keys on for the broker's ports (its own
# processes use local keys made in /data/keys at first start; give outside clients and workers keys with
# `docker exec tacore tacore keys generate NAME ...`, docs/security.md), and the sidecar then needs API_KEY.
ENV BIND_ADDRESS=0.0.0.0 \
    BROKER_CURVE=true \
    API_HOST=0.0.0.0 \
    DATA_DIR=/data \
    DATABASE_PATH=/data/tacoreservice.db \
    LOG_DIR=/data/logs
VOLUME ["/data"]
EXPOSE 5555 5556 5557 8000
STOPSIGNAL SIGTERM
CMD ["tacore", "serve"]
