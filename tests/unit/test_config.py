"""Settings: environment files, aliases, refusal of unsafe deployments, the dev secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from parley.config import ConfigurationError, Environment, Settings, environment_variable_names, load_settings

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
    assert first.db.url is None
    assert first.auth.jwt_secret_key is not None
    assert second.auth.jwt_secret_key is not None
    assert first.auth.jwt_secret_key.get_secret_value() == second.auth.jwt_secret_key.get_secret_value()
    assert len(first.auth.jwt_secret_key.get_secret_value()) >= 32
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
        load_settings(
            app_env="production", auth={"jwt_secret_key": secret}, db={"url": "postgresql://db/parley"}
        )


@pytest.mark.parametrize(
    "password", ["change-me", "changeme", "CHANGE-ME-TOO", "your-password", "%3Cpassword%3E"]
)
def test_deployments_refuse_a_placeholder_database_password(password: str) -> None:
    with pytest.raises(ConfigurationError, match="POSTGRES_URL's password is a placeholder"):
        load_settings(
            app_env="staging",
            auth={"jwt_secret_key": STRONG},
            db={"url": f"postgresql://parley:{password}@db/parley"},
        )


def test_deployments_accept_a_real_database_password_or_none() -> None:
    for url in ("postgresql://parley:Xk3-real-Pw@db/parley", "postgresql://db/parley?host=/run/pg"):
        settings = load_settings(app_env="production", auth={"jwt_secret_key": STRONG}, db={"url": url})
        assert settings.db.url is not None


def test_production_accepts_a_strong_secret_and_short_access_tokens() -> None:
    settings = load_settings(
        app_env="production", auth={"jwt_secret_key": STRONG}, db={"url": "postgresql://db/parley"}
    )

    assert settings.access_token_hours == 1
    assert settings.json_logs


def test_development_access_tokens_last_720_hours_unless_set() -> None:
    assert load_settings().access_token_hours == 720
    assert load_settings(auth={"jwt_access_token_expire_hours": 2}).access_token_hours == 2


def test_production_refuses_a_wildcard_cors_origin() -> None:
    with pytest.raises(ConfigurationError, match="CORS_ORIGINS"):
        load_settings(
            app_env="production",
            auth={"jwt_secret_key": STRONG},
            db={"url": "postgresql://db/p"},
            http={"cors_origins": "*"},
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
    assert settings.db.url is not None
    assert settings.db.url.get_secret_value() == "postgresql://staging/db"  # DATABASE_URL alias
    assert settings.llm.model == "from-staging"  # .env.<env> over .env
    assert settings.llm.max_tokens == 111
    assert settings.http.cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("LLM_MODEL", "from-environment")
    assert load_settings().llm.model == "from-environment"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"limits": {"chat": "lots"}}, "RATE_LIMIT_CHAT"),
        ({"limits": {"login_account": "10 per fortnight"}}, "RATE_LIMIT_LOGIN_ACCOUNT"),
        ({"limits": {"trusted_proxies": "10.0.0.0/8,nope"}}, "TRUSTED_PROXIES"),
        ({"http": {"header_timeout_seconds": "-1"}}, "HTTP_HEADER_TIMEOUT_SECONDS"),
        ({"http": {"body_timeout_seconds": "0"}}, "HTTP_BODY_TIMEOUT_SECONDS"),
    ],
)
def test_malformed_operational_values_are_refused_at_start(
    overrides: dict[str, dict[str, str]], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings(**overrides)


def test_empty_variables_mean_unset_for_every_optional_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*_OPTIONAL_SECRETS, "LLM_BASE_URL", "JWT_SECRET_KEY"):
        monkeypatch.setenv(name, "")

    settings = load_settings()

    assert not settings.observability.langfuse_enabled
    assert settings.observability.langfuse_public_key is None
    assert settings.observability.langfuse_secret_key is None
    assert settings.llm.api_key is None
    assert settings.llm.base_url is None
    assert settings.limits.redis_url is None
    assert settings.db.url is None
    assert settings.auth.jwt_secret_key is not None  # generated, as when the variable is absent


def test_empty_values_in_an_env_file_mean_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LANGFUSE_PUBLIC_KEY=\nLANGFUSE_SECRET_KEY=  \nPORT=\nREDIS_URL=\n")

    settings = load_settings()

    assert not settings.observability.langfuse_enabled
    assert settings.http.port == 8000
    assert settings.limits.redis_url is None


def test_an_empty_variable_overrides_a_value_in_the_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("LLM_API_KEY=sk-from-file\n")
    monkeypatch.setenv("LLM_API_KEY", "")

    assert load_settings().llm.api_key is None


def test_production_still_requires_a_secret_given_as_an_empty_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_SECRET_KEY", "")

    with pytest.raises(ConfigurationError, match="JWT_SECRET_KEY is required"):
        load_settings(app_env="production", db={"url": "postgresql://db/parley"})


def test_environment_variable_names_cover_every_setting_and_alias() -> None:
    names = environment_variable_names()
    assert {"LLM_MODEL", "POSTGRES_URL", "DATABASE_URL", "REDIS_URL", "APP_ENV"} <= names
    assert "NOT_A_SETTING" not in names
    assert all(name == name.upper() for name in names)


# Every variable Settings read before its fields were grouped (a public contract: README, .env.example,
# deployment manifests): grouping must neither drop nor rename one.
EXPECTED_VARIABLES = frozenset(
    {
        *("APP_ENV", "APP_NAME", "DATA_DIR", "HOST", "PORT", "LOG_LEVEL", "LOG_JSON", "CORS_ORIGINS"),
        *("MAX_BODY_BYTES", "MAX_MESSAGE_CHARS", "SSE_PING_SECONDS", "SHUTDOWN_GRACE_SECONDS"),
        *("HTTP_HEADER_TIMEOUT_SECONDS", "HTTP_BODY_TIMEOUT_SECONDS"),
        *(
            "POSTGRES_URL",
            "DATABASE_URL",
            "POSTGRES_POOL_SIZE",
            "POSTGRES_MAX_OVERFLOW",
            "POSTGRES_POOL_TIMEOUT",
        ),
        "MIGRATE_ON_START",
        *(
            "JWT_SECRET_KEY",
            "JWT_ALGORITHM",
            "JWT_ACCESS_TOKEN_EXPIRE_HOURS",
            "JWT_REFRESH_TOKEN_EXPIRE_DAYS",
        ),
        *("AUTH_SESSION_CACHE_SECONDS", "BCRYPT_ROUNDS", "BCRYPT_WORKERS"),
        *(
            "LLM_API_KEY",
            "LLM_MODEL",
            "LLM_FALLBACK_MODELS",
            "LLM_BASE_URL",
            "LLM_TEMPERATURE",
            "LLM_MAX_TOKENS",
            "LLM_CONTEXT_TOKENS",
        ),
        *(
            "LLM_RETRY_ATTEMPTS",
            "LLM_RETRY_BACKOFF_SECONDS",
            "LLM_TIMEOUT_SECONDS",
            "LLM_REQUEST_TIMEOUT_SECONDS",
        ),
        *("LLM_RECURSION_LIMIT", "OFFLINE_MODEL_TOKEN_DELAY_MS", "MCP_CONFIG_FILE"),
        *("MCP_TIMEOUT_SECONDS", "MCP_CONNECT_TIMEOUT_SECONDS"),
        *("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST"),
        *(
            "REDIS_URL",
            "RATE_LIMIT_ENABLED",
            "RATE_LIMIT_DEFAULT",
            "RATE_LIMIT_CHAT",
            "RATE_LIMIT_CHAT_STREAM",
        ),
        *("RATE_LIMIT_REGISTER", "RATE_LIMIT_LOGIN", "RATE_LIMIT_LOGIN_ACCOUNT", "TRUSTED_PROXIES"),
    }
    # Added with `parley eval` (issue 12): the judge model and the runner's limits.
    | {
        *("EVALUATION_LLM", "EVALUATION_API_KEY", "EVALUATION_BASE_URL", "EVALUATION_CONCURRENCY"),
        *("EVALUATION_TIMEOUT_SECONDS", "EVALUATION_RETRIES", "EVALUATION_THRESHOLD", "EVALUATION_DIR"),
    }
    # Added with auto-named chats (issue 14, item 5).
    | {"CHAT_AUTO_TITLE"}
    # Added with human approval of tool calls (issue 14, item 2).
    | {"TOOLS_REQUIRING_APPROVAL", "APPROVAL_TIMEOUT_SECONDS"}
    # Added with long-term memory per user (issue 14, item 3).
    | {"MEMORY_ENABLED", "MEMORY_RECALL_LIMIT", "MEMORY_LEARN_DELAY_SECONDS"}
    | {"MEMORY_EMBEDDING_MODEL", "MEMORY_EMBEDDING_DIMS"}
)


def test_environment_variable_names_are_exactly_the_published_ones() -> None:
    assert environment_variable_names() == EXPECTED_VARIABLES


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("APP_NAME", "Tattle", lambda s: s.app_name == "Tattle"),
        ("MAX_MESSAGE_CHARS", "99", lambda s: s.max_message_chars == 99),
        ("CHAT_AUTO_TITLE", "false", lambda s: s.chat_auto_title is False),
        ("APPROVAL_TIMEOUT_SECONDS", "90", lambda s: s.approval_timeout_seconds == 90),
        (
            "TOOLS_REQUIRING_APPROVAL",
            "calculator, files_write",
            lambda s: s.llm.approval_tools == ["calculator", "files_write"],
        ),
        ("MEMORY_ENABLED", "false", lambda s: s.memory.enabled is False),
        ("MEMORY_RECALL_LIMIT", "3", lambda s: s.memory.recall_limit == 3),
        ("MEMORY_LEARN_DELAY_SECONDS", "0", lambda s: s.memory.learn_delay_seconds == 0),
        ("MEMORY_EMBEDDING_MODEL", "text-embedding-3-small", lambda s: s.memory.embedding_model is not None),
        ("MEMORY_EMBEDDING_DIMS", "256", lambda s: s.memory.embedding_dims == 256),
        ("POSTGRES_POOL_SIZE", "3", lambda s: s.db.pool_size == 3),
        ("MIGRATE_ON_START", "true", lambda s: s.db.migrate_on_start is True),
        ("BCRYPT_ROUNDS", "5", lambda s: s.auth.bcrypt_rounds == 5),
        ("AUTH_SESSION_CACHE_SECONDS", "0", lambda s: s.auth.session_cache_seconds == 0),
        ("OFFLINE_MODEL_TOKEN_DELAY_MS", "7", lambda s: s.llm.offline_token_delay_ms == 7),
        ("MCP_CONFIG_FILE", "mcp.json", lambda s: s.llm.mcp_config_file == Path("mcp.json")),
        ("MCP_TIMEOUT_SECONDS", "2.5", lambda s: s.llm.mcp_timeout_seconds == 2.5),
        ("MCP_CONNECT_TIMEOUT_SECONDS", "4", lambda s: s.llm.mcp_connect_timeout_seconds == 4),
        ("RATE_LIMIT_ENABLED", "false", lambda s: s.limits.enabled is False),
        ("RATE_LIMIT_REGISTER", "3 per hour", lambda s: s.limits.registration == "3 per hour"),
        (
            "TRUSTED_PROXIES",
            "10.0.0.0/8, 192.0.2.1",
            lambda s: s.limits.trusted_proxies == ["10.0.0.0/8", "192.0.2.1"],
        ),
        ("HOST", "0.0.0.0", lambda s: s.http.host == "0.0.0.0"),
        ("SSE_PING_SECONDS", "2.5", lambda s: s.http.sse_ping_seconds == 2.5),
        ("LOG_JSON", "false", lambda s: s.json_logs is False),
        (
            "LANGFUSE_HOST",
            "http://lf.example",
            lambda s: s.observability.langfuse_host == "http://lf.example",
        ),
    ],
)
def test_each_variable_sets_its_grouped_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, read: Callable[[Settings], bool]
) -> None:
    monkeypatch.setenv(variable, value)

    assert read(load_settings())


def test_postgres_url_wins_over_its_alias_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://alias/db")
    monkeypatch.setenv("POSTGRES_URL", "postgresql://name/db")

    url = load_settings().db.url
    assert url is not None
    assert url.get_secret_value() == "postgresql://name/db"


def test_overrides_in_code_are_grouped_and_merge_with_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_MAX_TOKENS", "5")
    monkeypatch.setenv("LLM_MODEL", "from-environment")

    settings = load_settings(llm={"model": "from-code"})

    assert (settings.llm.model, settings.llm.max_tokens) == ("from-code", 5)


def test_an_override_by_an_unknown_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rate_limit_chat: no such setting"):
        load_settings(rate_limit_chat="5 per minute")
    with pytest.raises(ConfigurationError, match=r"llm\.modle: no such setting"):
        load_settings(llm={"modle": "typo"})


def test_variables_named_like_a_group_are_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for group in ("DB", "AUTH", "LLM", "LIMITS", "HTTP", "OBSERVABILITY"):
        monkeypatch.setenv(group, "not json")
    (tmp_path / ".env").write_text("LLM={}\nSOMETHING_ELSE=1\n")

    assert load_settings().llm.model == "gpt-4o-mini"


def test_a_bad_value_from_a_file_names_its_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LLM_MAX_TOKENS=0\nDATABASE_URL=\n")

    with pytest.raises(
        ConfigurationError, match="LLM_MAX_TOKENS: Input should be greater than or equal to 1"
    ):
        load_settings()
