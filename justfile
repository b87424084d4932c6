# Agent Stream developer commands. `just --list` shows them all.
set shell := ["bash", "-euo", "pipefail", "-c"]

uv := "python3 -m uv"

# install the locked environment (dev tools included)
setup:
    {{uv}} sync --locked

# serve on the embedded SQLite default (or AGENT_STREAM_DATABASE_URL)
run *ARGS:
    {{uv}} run agent-stream serve {{ARGS}}

alias serve := run

# every test, against PostgreSQL (found or started by tests/pg.py)
test *ARGS:
    {{uv}} run pytest {{ARGS}}

# ruff, formatting, mypy and the layer contracts
lint:
    {{uv}} run ruff check .
    {{uv}} run ruff format --check .
    {{uv}} run mypy
    {{uv}} run lint-imports

# apply migrations to AGENT_STREAM_DATABASE_URL
db-upgrade:
    {{uv}} run agent-stream db upgrade

# a new migration revision from the models (review it before committing)
migration NAME:
    {{uv}} run alembic -c src/adapters/sql/migrations/alembic.ini revision --autogenerate -m "{{NAME}}"

# the load benchmark of bench/ (see docs/benchmarks.md)
bench *ARGS:
    bash bench/run.sh {{ARGS}}
