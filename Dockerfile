# mlagent's server image: non-root, with bubblewrap for the agent's sandbox.
# Build: docker build -t mlagent .      Run: see compose.yaml and docs/operating.md ("Container").
# The sandbox (bwrap) needs user namespaces and mounts inside the container, which Docker's
# defaults forbid: run with the security options compose.yaml sets (documented there and in
# docs/operating.md); without them the server starts with the logged, weaker fallback
# (MLAGENT_SANDBOX_ISOLATION=auto) or refuses to start (=bwrap).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bubblewrap: the sandbox; tini: PID 1 that forwards SIGTERM and reaps the sandbox's orphans.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 mlagent \
 && useradd --system --uid 10001 --gid mlagent --home-dir /home/mlagent --create-home --shell /usr/sbin/nologin mlagent \
 && mkdir -p /data && chown mlagent:mlagent /data

WORKDIR /app
# Dependencies first (a layer that survives code edits), then the code.
COPY pyproject.toml README.md ./
RUN mkdir -p src/mlagent && touch src/mlagent/__init__.py \
 && pip install . \
 && pip uninstall -y mlagent
COPY src ./src
RUN pip install --no-deps . && rm -rf /app/src
COPY docker/entrypoint.sh /usr/local/bin/mlagent-entrypoint

USER mlagent
ENV MLAGENT_HOST=0.0.0.0 \
    MLAGENT_PORT=8000 \
    MLAGENT_GRPC_PORT=50051 \
    MLAGENT_DATA_DIR=/data \
    MLAGENT_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000 50051

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('MLAGENT_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/mlagent-entrypoint"]
CMD ["serve"]
