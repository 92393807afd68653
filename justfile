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

# Evaluate the agent (README "Evaluate the agent"): asks dataset, metrics, model, concurrency on a terminal
eval *args:
    uv run parley eval {{args}}

# Evaluate with the defaults, no questions; writes evaluation/reports/evaluation_report_*.json and .html
eval-quick *args:
    uv run parley eval --quick {{args}}

# Evaluate with the defaults and print the summary only (no report files)
eval-no-report *args:
    uv run parley eval --quick --no-report {{args}}

# Benchmarks against a local fake model (see bench/README.md)
bench *args:
    uv run python -m bench {{args}}

# --- Containers (README "Run the full stack"; Docker with the compose plugin) ---------------
# Each takes ENV (development | staging | production; `ENV=` may be written or not) and reads
# .env.<ENV> at the root, made from deploy/env/.env.<ENV> (development's is copied for you).

# Build the API image, tagged parley:<ENV>: just docker-build-env ENV=production
docker-build-env ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} build api

# Run the API behind its proxy, with its PostgreSQL and Redis (no monitoring): http://localhost:8080
docker-run-env ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} up -d --build --wait proxy

# Follow the API's and the proxy's logs
docker-logs ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} logs --follow --tail 200 api proxy

# Stop the containers (they and their data stay; stack-down removes them)
docker-stop ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} stop

# The whole stack: API, proxy, PostgreSQL, Redis, Prometheus, Grafana (COMPOSE_PROFILES=langfuse adds Langfuse)
stack-up ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} up -d --build --wait

# Remove the stack's containers and network; the data volumes stay (add -v by hand to drop them)
stack-down ENV="development": (_env-file ENV)
    docker compose --env-file .env.{{ trim_start_match(ENV, "ENV=") }} down

# .env.<ENV> must exist: development's is made from its template, the others are yours to fill in
[private]
_env-file ENV:
    #!/usr/bin/env sh
    set -eu
    env="{{ trim_start_match(ENV, "ENV=") }}"
    case "$env" in
        development | staging | production) ;;
        *) echo "ENV must be development, staging or production, not '$env'" >&2; exit 2 ;;
    esac
    [ -f ".env.$env" ] && exit 0
    if [ "$env" = development ]; then
        cp deploy/env/.env.development .env.development
        echo "Created .env.development from deploy/env/.env.development (development values only)."
        exit 0
    fi
    echo "No .env.$env: cp deploy/env/.env.$env .env.$env, then replace every change-me and fill GRAFANA_ADMIN_PASSWORD." >&2
    exit 1
