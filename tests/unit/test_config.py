"""Settings: environment files, aliases, refusal of unsafe deployments, the dev secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.config import ConfigurationError, Environment, environment_variable_names, load_settings

pytestmark = pytest.mark.unit
STRONG = "k" * 20 + "Q9#" + "z" * 20
_OPTIONAL_SECRETS = ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LLM_API_KEY", "REDIS_URL", "POSTGRES_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Run each test in an empty folder with none of Parley's variables set."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "APP_ENV",
        "DATABASE_URL",
        "JWT_SECRET_KEY",
        "LLM_MODEL",
        "CORS_ORIGINS",
        "PORT",
        *_OPTIONAL_SECRETS,
    ):
        monkeypatch.delenv(name, raising=False)


def test_development_needs_nothing_and_keeps_its_generated_secret(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path / "data")
    second = load_settings(data_dir=tmp_path / "data")

    assert first.app_env is Environment.DEVELOPMENT
    assert first.postgres_url is None
    assert first.jwt_secret_key is not None
    assert second.jwt_secret_key is not None
    assert first.jwt_secret_key.get_secret_value() == second.jwt_secret_key.get_secret_value()
    assert len(first.jwt_secret_key.get_secret_value()) >= 32
    assert (tmp_path / "data" / "jwt_secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("env", ["staging", "production"])
def test_deployments_refuse_a_missing_secret_and_database_in_one_message(env: str) -> None:
    with pytest.raises(ConfigurationError) as failure:
        load_settings(app_env=env)

    message = str(failure.value)
    assert "JWT_SECRET_KEY is required" in message
    assert "POSTGRES_URL" in message


@pytest.mark.parametrize("secret", ["short", "changeme", "change-me-please-change-me-please-12345", "x" * 31])
def test_deployments_refuse_weak_or_placeholder_secrets(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY must be a random value"):
        load_settings(app_env="production", jwt_secret_key=secret, postgres_url="postgresql://db/parley")


@pytest.mark.parametrize(
    "password", ["change-me", "changeme", "CHANGE-ME-TOO", "your-password", "%3Cpassword%3E"]
)
def test_deployments_refuse_a_placeholder_database_password(password: str) -> None:
    with pytest.raises(ConfigurationError, match="POSTGRES_URL's password is a placeholder"):
        load_settings(
            app_env="staging", jwt_secret_key=STRONG, postgres_url=f"postgresql://parley:{password}@db/parley"
        )


def test_deployments_accept_a_real_database_password_or_none() -> None:
    for url in ("postgresql://parley:Xk3-real-Pw@db/parley", "postgresql://db/parley?host=/run/pg"):
        assert load_settings(app_env="production", jwt_secret_key=STRONG, postgres_url=url).postgres_url


def test_production_accepts_a_strong_secret_and_short_access_tokens() -> None:
    settings = load_settings(
        app_env="production", jwt_secret_key=STRONG, postgres_url="postgresql://db/parley"
    )

    assert settings.access_token_hours == 1
    assert settings.json_logs


def test_development_access_tokens_last_720_hours_unless_set() -> None:
    assert load_settings().access_token_hours == 720
    assert load_settings(jwt_access_token_expire_hours=2).access_token_hours == 2


def test_production_refuses_a_wildcard_cors_origin() -> None:
    with pytest.raises(ConfigurationError, match="CORS_ORIGINS"):
        load_settings(
            app_env="production", jwt_secret_key=STRONG, postgres_url="postgresql://db/p", cors_origins="*"
        )


def test_app_env_selects_its_env_file_and_real_variables_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("LLM_MODEL=from-dotenv\nLLM_MAX_TOKENS=111\n")
    (tmp_path / ".env.staging").write_text(
        f"JWT_SECRET_KEY={STRONG}\nDATABASE_URL=postgresql://staging/db\nLLM_MODEL=from-staging\n"
    )
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")

    settings = load_settings()

    assert settings.app_env is Environment.STAGING
    assert settings.postgres_url is not None
    assert settings.postgres_url.get_secret_value() == "postgresql://staging/db"  # DATABASE_URL alias
    assert settings.llm_model == "from-staging"  # .env.<env> over .env
    assert settings.llm_max_tokens == 111
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("LLM_MODEL", "from-environment")
    assert load_settings().llm_model == "from-environment"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"rate_limit_chat": "lots"}, "RATE_LIMIT_CHAT"),
        ({"rate_limit_login_account": "10 per fortnight"}, "RATE_LIMIT_LOGIN_ACCOUNT"),
        ({"trusted_proxies": "10.0.0.0/8,nope"}, "TRUSTED_PROXIES"),
        ({"http_header_timeout_seconds": "-1"}, "HTTP_HEADER_TIMEOUT_SECONDS"),
        ({"http_body_timeout_seconds": "0"}, "HTTP_BODY_TIMEOUT_SECONDS"),
    ],
)
def test_malformed_operational_values_are_refused_at_start(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(**overrides)


def test_empty_variables_mean_unset_for_every_optional_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_OPTIONAL_SECRETS, "LLM_BASE_URL", "JWT_SECRET_KEY"):
        monkeypatch.setenv(name, "")

    settings = load_settings()

    assert not settings.langfuse_enabled
    assert settings.langfuse_public_key is None
    assert settings.langfuse_secret_key is None
    assert settings.llm_api_key is None
    assert settings.llm_base_url is None
    assert settings.redis_url is None
    assert settings.postgres_url is None
    assert settings.jwt_secret_key is not None  # generated, as when the variable is absent


def test_empty_values_in_an_env_file_mean_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LANGFUSE_PUBLIC_KEY=\nLANGFUSE_SECRET_KEY=  \nPORT=\nREDIS_URL=\n")

    settings = load_settings()

    assert not settings.langfuse_enabled
    assert settings.port == 8000
    assert settings.redis_url is None


def test_an_empty_variable_overrides_a_value_in_the_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("LLM_API_KEY=sk-from-file\n")
    monkeypatch.setenv("LLM_API_KEY", "")

    assert load_settings().llm_api_key is None


def test_production_still_requires_a_secret_given_as_an_empty_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_SECRET_KEY", "")

    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY is required"):
        load_settings(app_env="production", postgres_url="postgresql://db/parley")


def test_environment_variable_names_cover_every_setting_and_alias() -> None:
    names = environment_variable_names()
    assert {"LLM_MODEL", "POSTGRES_URL", "DATABASE_URL", "REDIS_URL", "APP_ENV"} <= names
    assert "NOT_A_SETTING" not in names
    assert all(name == name.upper() for name in names)
