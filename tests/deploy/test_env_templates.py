"""The env templates (deploy/env/.env.<environment>) as compose.yaml hands them to the API:
development starts as it is; staging and production, as shipped, are refused with a message
naming each placeholder (by Parley) or empty required value (by Compose), and start once
they are filled in. No template holds a real secret."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from parley.config import ConfigurationError, Environment, environment_variable_names, load_settings
from tests.deploy.compose_model import (
    ENVIRONMENTS,
    MissingVariable,
    compose_document,
    environment_of,
    interpolated,
    template,
)

pytestmark = pytest.mark.unit

DEPLOYED = ("staging", "production")
# Names in the templates that are not Parley's settings: compose.yaml's own, and the image's.
STACK_VARIABLES = frozenset(
    {
        "PROXY_PORT",
        "PUBLIC_URL",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "WEB_CONCURRENCY",
        "LANGFUSE_PORT",
        "LANGFUSE_PUBLIC_URL",
        "LANGFUSE_ADMIN_EMAIL",
        "LANGFUSE_ADMIN_PASSWORD",
        "LANGFUSE_NEXTAUTH_SECRET",
        "LANGFUSE_SALT",
        "LANGFUSE_ENCRYPTION_KEY",
        "LANGFUSE_POSTGRES_PASSWORD",
        "LANGFUSE_CLICKHOUSE_PASSWORD",
        "LANGFUSE_MINIO_PASSWORD",
        "LANGFUSE_REDIS_PASSWORD",
    }
)
SECRETS = frozenset(
    {"JWT_SECRET_KEY", "LLM_API_KEY", "LANGFUSE_SECRET_KEY"}
    | {name for name in STACK_VARIABLES if name.endswith(("PASSWORD", "SECRET", "SALT", "KEY"))}
)


@pytest.fixture(autouse=True)
def only_the_stack_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No .env file and none of Parley's variables from the machine: only what a test sets."""
    monkeypatch.chdir(tmp_path)
    for name in environment_variable_names():
        monkeypatch.delenv(name, raising=False)


def _api_environment(values: dict[str, str]) -> dict[str, str]:
    """What the `api` container's environment is with these env-file values."""
    services = interpolated(compose_document()["services"], values)
    return environment_of(services["api"])


def _load_as_the_api(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in _api_environment(values).items():
        monkeypatch.setenv(name, value)
    load_settings()


def _filled_in(values: dict[str, str]) -> dict[str, str]:
    """The template with every placeholder and empty secret replaced by a random value."""
    return {
        name: secrets.token_urlsafe(36) if name in SECRETS and (not value or "change-me" in value) else value
        for name, value in values.items()
    }


def test_every_template_names_only_variables_the_stack_reads() -> None:
    for environment in ENVIRONMENTS:
        unknown = set(template(environment)) - environment_variable_names() - STACK_VARIABLES
        assert unknown == set(), environment
        assert template(environment)["APP_ENV"] == environment


def test_development_starts_as_shipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))

    _load_as_the_api(monkeypatch, template("development"))

    settings = load_settings()
    assert settings.app_env is Environment.DEVELOPMENT
    assert settings.limits.redis_url is not None
    assert settings.limits.trusted_proxies == ["172.28.0.10"]


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployments_as_shipped_are_refused_naming_each_placeholder(
    monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    values = template(environment)

    with pytest.raises(MissingVariable, match="GRAFANA_ADMIN_PASSWORD"):
        interpolated(compose_document()["services"], values)
    with pytest.raises(ConfigurationError) as refused:
        _load_as_the_api(monkeypatch, values | {"GRAFANA_ADMIN_PASSWORD": "filled-in"})

    message = str(refused.value)
    assert message.startswith(f"Invalid configuration: refusing to start in {environment}: ")
    assert "JWT_SECRET_KEY must be a random value" in message
    assert "POSTGRES_URL's password is a placeholder" in message


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployments_start_once_filled_in(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    _load_as_the_api(monkeypatch, _filled_in(template(environment)))

    assert load_settings().app_env.value == environment


@pytest.mark.parametrize("environment", DEPLOYED)
def test_no_deployment_template_holds_a_secret(environment: str) -> None:
    values = template(environment)

    for name in SECRETS & set(values):
        assert values[name] in {"", "change-me"} or values[name].startswith("change-me"), name
