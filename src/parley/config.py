"""Settings: read once at start-up, then passed down as plain values.

``APP_ENV`` (development | staging | production) selects ``.env.<env>``; a plain
``.env`` is read first and real environment variables always win.
Staging and production refuse to start on a missing/weak JWT secret or a missing
database URL, with one message listing every problem.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from parley.domain.chat import DEFAULT_MAX_MESSAGE_LENGTH

MIN_SECRET_BYTES = 32
_PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "secret", "your-secret-key", "jwt-secret", "supersecret", "please-change-me"}
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class ConfigurationError(Exception):
    """The configuration cannot run; the message says what to fix."""


def _is_blank(value: Any) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and not value.strip()


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDER_SECRETS or lowered.startswith(("change", "replace", "your-", "<"))


def _has_placeholder_password(url: str) -> bool:
    try:
        password = urlsplit(url).password
    except ValueError:  # an unparsable URL is the database driver's to refuse
        return False
    return password is not None and _is_placeholder(unquote(password))


class Settings(BaseSettings):
    """Every knob of Parley, named exactly like its environment variable (see ``.env.example``).

    An empty value (``NAME=``) counts as unset, for every setting.
    """

    model_config = SettingsConfigDict(
        extra="ignore", env_file_encoding="utf-8", validate_default=True, populate_by_name=True
    )

    # Application
    app_env: Environment = Environment.DEVELOPMENT
    app_name: str = "Parley"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".parley")
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON outside development
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_message_chars: int = Field(DEFAULT_MAX_MESSAGE_LENGTH, ge=1, le=1_000_000)
    sse_ping_seconds: float = Field(15.0, gt=0)  # ": ping" after this long without an event
    # On SIGTERM, replies being streamed may go on this long before they are stopped (with an
    # `error` event). The server stops within about this plus 5 s: keep it under the
    # orchestrator's grace period (Kubernetes: 30 s by default).
    shutdown_grace_seconds: float = Field(20.0, ge=0, le=3600)
    # Slow clients (README "Slow clients").
    # The time a connection has to deliver a whole request head (from connecting, or from the
    # previous response). A real client sends its head in one packet, at once: 10 s covers a
    # mobile link's retransmissions, is longer than uvicorn's 5 s keep-alive (which still closes
    # idle connections first), and holds a slowloris connection 10 s instead of forever
    # (nginx's client_header_timeout is 60 s, Go servers commonly set ReadHeaderTimeout to 5-10 s).
    http_header_timeout_seconds: float = Field(10.0, gt=0)
    # The longest pause within a request body before the request ends with 408. 30 s: between
    # Apache's 20 s (mod_reqtimeout) and nginx's 60 s (client_body_timeout); a phone changing
    # networks resumes well within it, and bodies are small (MAX_BODY_BYTES).
    http_body_timeout_seconds: float = Field(30.0, gt=0)

    # Database
    postgres_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("POSTGRES_URL", "DATABASE_URL")
    )
    postgres_pool_size: int = Field(10, ge=1)
    # 0: SQLAlchemy closes an overflow connection as soon as it is returned, so under steady
    # concurrency above the pool size every checkout opened a new connection (turns benchmark:
    # 157 -> 186 turns/s without overflow). Size the pool instead.
    postgres_max_overflow: int = Field(0, ge=0)
    # How long a request waits in line for a pooled connection before it is refused (503 with
    # Retry-After). Long enough for a burst to drain: 1,000 streams opened at once on one core
    # waited up to ~5 s (bench `slow`), so the former 5 s refused some of them.
    postgres_pool_timeout: float = Field(30.0, gt=0)
    migrate_on_start: bool | None = None  # None: only for the embedded development database

    # Auth
    jwt_secret_key: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    jwt_access_token_expire_hours: float | None = Field(None, gt=0)  # None: 720 in development, 1 otherwise
    jwt_refresh_token_expire_days: float = Field(365, gt=0)
    # How long a checked login (auth session) is trusted without reading it again: a revocation
    # by another instance takes at most this long to count here; 0 reads it on every request.
    auth_session_cache_seconds: float = Field(1.0, ge=0, le=60)
    bcrypt_rounds: int = Field(12, ge=4, le=31)
    bcrypt_workers: int = Field(4, ge=1)

    # Language model
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    llm_temperature: float = 0.2
    llm_max_tokens: int = Field(2000, ge=1)
    llm_context_tokens: int = Field(8000, ge=256)
    llm_retry_attempts: int = Field(3, ge=1, le=10)
    llm_retry_backoff_seconds: float = Field(0.5, ge=0)
    llm_timeout_seconds: float = Field(60.0, gt=0)  # a whole turn: every model call, tool and retry
    llm_request_timeout_seconds: float = Field(30.0, gt=0)  # one HTTP request to the model
    llm_recursion_limit: int = Field(12, ge=2)
    offline_model_token_delay_ms: float = Field(0.0, ge=0)

    # Tracing
    langfuse_public_key: SecretStr | None = None
    langfuse_secret_key: SecretStr | None = None
    langfuse_host: str = "https://cloud.langfuse.com"

    # Rate limits (slowapi syntax; ";" separates several limits)
    redis_url: SecretStr | None = None
    rate_limit_enabled: bool = True
    rate_limit_default: str = "200 per day;50 per hour"
    rate_limit_chat: str = "30 per minute"
    rate_limit_chat_stream: str = "20 per minute"
    rate_limit_register: str = "10 per hour"
    rate_limit_login: str = "20 per minute"
    # Login attempts on one account from every address together (why these numbers:
    # RateLimitConfig.login_account); spent, even the right password waits for the window.
    rate_limit_login_account: str = "10 per minute;100 per day"
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """``NAME=`` (as left in a copied ``.env``) means the setting is not set: its default
        applies. Without this, an empty ``LANGFUSE_PUBLIC_KEY=`` switched tracing on."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if not _is_blank(value)}
        return data

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "rate_limit_default",
        "rate_limit_chat",
        "rate_limit_chat_stream",
        "rate_limit_register",
        "rate_limit_login",
        "rate_limit_login_account",
    )
    @classmethod
    def _parseable_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate limit (e.g. '30 per minute;1000 per day')") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_deployments(self) -> Settings:
        if self.app_env is Environment.DEVELOPMENT:
            return self
        problems: list[str] = []
        secret = self.jwt_secret_key.get_secret_value() if self.jwt_secret_key else ""
        if not secret:
            problems.append("JWT_SECRET_KEY is required")
        elif len(secret.encode()) < MIN_SECRET_BYTES or _is_placeholder(secret):
            problems.append(f"JWT_SECRET_KEY must be a random value of at least {MIN_SECRET_BYTES} bytes")
        if self.postgres_url is None:
            problems.append("POSTGRES_URL (or DATABASE_URL) is required")
        elif _has_placeholder_password(self.postgres_url.get_secret_value()):
            # The env templates (deploy/env/) build the URL from POSTGRES_PASSWORD=change-me.
            problems.append("POSTGRES_URL's password is a placeholder: set a real one")
        if "*" in self.cors_origins:
            problems.append("CORS_ORIGINS must list explicit origins, not '*'")
        if problems:
            raise ValueError(f"refusing to start in {self.app_env.value}: " + "; ".join(problems))
        return self

    @property
    def is_development(self) -> bool:
        return self.app_env is Environment.DEVELOPMENT

    @property
    def access_token_hours(self) -> float:
        if self.jwt_access_token_expire_hours is not None:
            return self.jwt_access_token_expire_hours
        return 720.0 if self.is_development else 1.0

    @property
    def json_logs(self) -> bool:
        return (not self.is_development) if self.log_json is None else self.log_json

    @property
    def langfuse_enabled(self) -> bool:
        return self.langfuse_public_key is not None and self.langfuse_secret_key is not None


def environment_variable_names() -> frozenset[str]:
    """Every environment variable Settings reads (upper case), aliases included.

    Deployment manifests and templates are checked against this: a variable they set that is
    not here would be silently ignored.
    """
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(name.upper())
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
    return frozenset(names)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from ``.env``, ``.env.<APP_ENV>`` and the environment.

    In development with no ``JWT_SECRET_KEY``, a random secret is generated once and
    kept in ``<data_dir>/jwt_secret`` so tokens survive restarts.
    """
    app_env = str(overrides.get("app_env") or os.environ.get("APP_ENV") or Environment.DEVELOPMENT.value)
    try:
        settings = Settings(_env_file=(".env", f".env.{app_env}"), **overrides)
    except ValidationError as invalid:
        raise ConfigurationError(_describe(invalid)) from None
    if settings.jwt_secret_key is None:
        settings = settings.model_copy(update={"jwt_secret_key": SecretStr(_local_secret(settings.data_dir))})
    return settings


def _describe(invalid: ValidationError) -> str:
    parts = []
    for error in invalid.errors():
        where = ".".join(str(p) for p in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "Invalid configuration: " + "; ".join(parts)


def _local_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret
