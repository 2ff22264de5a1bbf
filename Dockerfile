# Điểm danh: one image for the embedded SQLite default or PostgreSQL (DIEMDANH_DATABASE_URL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DIEMDANH_HOST=0.0.0.0 \
    DIEMDANH_PORT=8000 \
    DIEMDANH_DATA_DIR=/data

# pg_dump, pg_restore and psql for `diemdanh backup`/`restore` on PostgreSQL (Debian 12's client is 15: it
# dumps servers up to 15; for a newer server, back up from a machine with that server's client).
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY server ./server
COPY qr ./qr
COPY templates ./templates
COPY static ./static
# Editable install: templates/ and static/ are read from /app, next to the code.
RUN pip install --no-cache-dir -e . \
    && useradd --system --uid 10001 --home-dir /data diemdanh \
    && mkdir -p /data && chown diemdanh /data

USER diemdanh
VOLUME ["/data"]
EXPOSE 8000
# `serve` migrates the database before it listens: --start-period gives a long migration time to finish.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DIEMDANH_PORT', '8000'), timeout=4)"
# Set DIEMDANH_SECRET_KEY and DIEMDANH_BASE_URL when running it (deploy/compose.yaml does). tests/test_deploy.py
# runs this CMD and the HEALTHCHECK above outside a container.
CMD ["diemdanh", "serve"]
