# Parley's everyday commands. Run them as `uv run just <recipe>` (just is a dev dependency).

set dotenv-load := false

default:
    @just --list

# Serve on the embedded defaults (PostgreSQL from a wheel, offline model), reloading on change
dev:
    APP_ENV=development uv run parley serve --reload

# Serve with .env.staging (needs JWT_SECRET_KEY and POSTGRES_URL)
staging:
    APP_ENV=staging uv run parley serve

# Serve with .env.production (needs JWT_SECRET_KEY and POSTGRES_URL)
production:
    APP_ENV=production uv run parley serve --host 0.0.0.0

# Upgrade the database to the newest schema
migrate:
    uv run parley migrate

# Create a migration from the table metadata: just revision m="add things"
revision m:
    uv run alembic revision --autogenerate -m "{{m}}"

# The whole test suite with coverage (fails under 85 %); the same command CI runs
test:
    uv run pytest -n 2 --cov --cov-report=term-missing:skip-covered --cov-fail-under=85

# Some tests, fast, no coverage: just t tests/unit -k login
t *args:
    uv run pytest {{args}}

# Coverage as an HTML report in htmlcov/
cov:
    uv run pytest -n 2 --cov --cov-report=html --cov-report=term:skip-covered

# Lint, type-check and check the architecture's layers
lint:
    uv run ruff check src tests bench
    uv run ruff format --check src tests bench
    uv run mypy
    uv run lint-imports

# Format the code
fmt:
    uv run ruff format src tests bench
    uv run ruff check --fix src tests bench

# Benchmarks against a local fake model (see bench/README.md)
bench *args:
    uv run python -m bench {{args}}
