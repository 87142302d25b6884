# syntax=docker/dockerfile:1
# Retrieval service: FastAPI + FAISS + the image/text encoders (CPU torch by default).
#   docker build -f docker/retrieval.Dockerfile .
# Pinned dependencies: every package version comes from constraints.txt.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# the Milvus client (FITTINGROOM_INDEX_BACKEND=milvus, compose profile "milvus")
ARG EXTRAS=milvus
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY fittingroom/ fittingroom/
COPY catalog_ingest/ catalog_ingest/
COPY services/ services/
COPY crawler/ crawler/
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/app app \
    && mkdir -p /data /models /index \
    && chown app:app /data /models /index
COPY --from=build /opt/venv /opt/venv
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
    CMD ["python", "-m", "services.healthcheck", "http://127.0.0.1:8000/healthz", "--allow", "no_index"]
# `fittingroom serve --service`: the app hardened like `fittingroom serve` (security headers, Host
# allow-list SERVE_ALLOWED_HOSTS, upload rate limit, header-read timeout; services/hardening.py)
CMD ["fittingroom", "serve", "--service", "retrieval", "--host", "0.0.0.0", "--port", "8000", \
     "--forwarded-allow-ips", "*"]
