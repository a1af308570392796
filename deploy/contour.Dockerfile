# syntax=docker/dockerfile:1
# Contour's own services (contour-dialer, contour-cdc, contour-loader, contour-exporter).
#
# Build context: the repository root (docker-compose.yml sets it); what is sent to the
# builder is limited by deploy/contour.Dockerfile.dockerignore.
# Dependencies: exactly requirements/core.lock, installed with uv (pinned like bootstrap.py),
# in a virtual environment of its own; the project is installed editable at /opt/contour so
# that contour.config.PROJECT_ROOT is /opt/contour, as in a checkout.
FROM python:3.11.15-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install uv==0.13.8 \
 && uv venv --python /usr/local/bin/python3.11 /opt/venv

# the lock first: the dependency layer is rebuilt only when the lock changes
COPY requirements/core.lock /opt/contour/requirements/core.lock
RUN uv pip sync --python /opt/venv/bin/python /opt/contour/requirements/core.lock

# the project: what contour.Dockerfile.dockerignore lets through (pyproject.toml and the
# package folders; a folder that does not exist yet is simply absent)
COPY . /opt/contour
RUN uv pip install --python /opt/venv/bin/python --no-deps -e /opt/contour \
 && contour --help > /dev/null

# the CDC relay's native row codec (ingestion/cdc/rowcodec.c; the image has the Python
# headers): compiled with a compiler that is removed again, and checked to load
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && cd /opt/contour && python -m ingestion.cdc.rowcodec && python -m ingestion.cdc.rowcodec --check \
 && apt-get purge -y --auto-remove gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

# Unprivileged user; /var/lib/contour is the state folder (a named volume per service).
# Every service is external in a container: nothing embedded is ever started here.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/contour \
        --shell /usr/sbin/nologin contour \
 && mkdir -p /var/lib/contour/run \
 && chown -R contour:contour /var/lib/contour
ENV CONTOUR_STATE_DIR=/var/lib/contour \
    CONTOUR_MANAGED_SERVICES=none
USER contour
WORKDIR /var/lib/contour

CMD ["contour", "--help"]
