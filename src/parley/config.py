"""Settings: read once at start-up, then passed down as plain values.

The settings are grouped by what they feed: ``db`` (the engine and migrations), ``auth`` (token
issuer, password hasher, the cache of checked logins), ``llm`` (the model and the agent's limits),
``memory`` (long-term memory per user), ``limits`` (rate limits and their storage), ``http`` (the
server and the HTTP edge), ``observability`` (logs and Langfuse), ``evaluation`` (``parley eval``:
the judge model and the runner's limits), plus the application's own few (``app_env``, ``app_name``,
``data_dir``, ``max_message_chars``, ``chat_auto_title``). The composition root hands each
group's values to the adapter config objects by keyword.

Each setting is still read from one flat environment variable, named at its field
(``validation_alias``): ``LLM_MODEL`` sets ``settings.llm.model``, ``POSTGRES_URL`` (or
``DATABASE_URL``) sets ``settings.db.url``. Those names are a public contract (README,
``.env.example``, deployment manifests); :func:`environment_variable_names` lists them.

``APP_ENV`` (development | staging | production) selects ``.env.<env>``; a plain ``.env`` is read
first and real environment variables always win. An empty value (``NAME=``) counts as unset.
Staging and production refuse to start on a missing/weak JWT secret or a missing database URL,
with one message listing every problem. Overrides given in code (tests) are grouped like the
settings, e.g. ``load_settings(llm={"model": "fake"})``; an unknown name is refused.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from enum import StrEnum
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from limits import parse_many
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import DotEnvSettingsSource, EnvSettingsSource

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


def _without_blanks(data: Any) -> Any:
    """``NAME=`` (as left in a copied ``.env``) means the setting is not set: its default
    applies. Without this, an empty ``LANGFUSE_PUBLIC_KEY=`` switched tracing on. Applied to
    the merged sources, so an empty variable still overrides a value in a ``.env`` file."""
    if isinstance(data, dict):
        return {key: value for key, value in data.items() if not _is_blank(value)}
    return data


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDER_SECRETS or lowered.startswith(("change", "replace", "your-", "<"))


def _has_placeholder_password(url: str) -> bool:
    try:
        password = urlsplit(url).password
    except ValueError:  # an unparsable URL is the database driver's to refuse
        return False
    return password is not None and _is_placeholder(unquote(password))


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _parseable_limit(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate limit (e.g. '30 per minute;1000 per day')") from None
    return value


def _distinct_models(value: list[str]) -> list[str]:
    for item in value:
        _model_name(item)
    if len(set(value)) != len(value):
        raise ValueError("a model is listed twice")
    return value


def _addresses_or_networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return value


def _model_name(value: str) -> str:
    """A ``provider:model`` string (README "Models and fallbacks"): no whitespace, and no empty
    side of its first colon. Which prefixes are providers is the agent adapter's business: an
    unknown one is part of an OpenAI model's name (``ft:gpt-4o-mini:org::id``, ``llama3:8b``)."""
    prefix, colon, rest = value.partition(":")
    if not value or any(c.isspace() for c in value) or (colon and not (prefix and rest)):
        raise ValueError(f"{value!r} is not a model (e.g. 'gpt-4o-mini' or 'anthropic:claude-3-5-haiku')")
    return value


CommaSeparated = Annotated[list[str], BeforeValidator(_split_commas)]
ModelName = Annotated[str, AfterValidator(_model_name)]
RateLimit = Annotated[str, AfterValidator(_parseable_limit)]  # slowapi syntax; ";" separates several


class _Group(BaseModel):
    """A group of settings. Each field names its environment variable as ``validation_alias``;
    in code (overrides, tests) fields are given by name."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, validate_by_name=True, validate_by_alias=True
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        return _without_blanks(data)


class DatabaseSettings(_Group):
    """PostgreSQL: the URL (unset in development: an embedded database), the engine's pool."""

    url: SecretStr | None = Field(None, validation_alias=AliasChoices("POSTGRES_URL", "DATABASE_URL"))
    pool_size: int = Field(10, ge=1, validation_alias="POSTGRES_POOL_SIZE")
    # 0: SQLAlchemy closes an overflow connection as soon as it is returned, so under steady
    # concurrency above the pool size every checkout opened a new connection (turns benchmark:
    # 157 -> 186 turns/s without overflow). Size the pool instead.
    max_overflow: int = Field(0, ge=0, validation_alias="POSTGRES_MAX_OVERFLOW")
    # How long a request waits in line for a pooled connection before it is refused (503 with
    # Retry-After). Long enough for a burst to drain: 1,000 streams opened at once on one core
    # waited up to ~5 s (bench `slow`), so the former 5 s refused some of them.
    pool_timeout: float = Field(30.0, gt=0, validation_alias="POSTGRES_POOL_TIMEOUT")
    # None: only for the embedded development database
    migrate_on_start: bool | None = Field(None, validation_alias="MIGRATE_ON_START")


class AuthSettings(_Group):
    """The token issuer (JWT_*), the password hasher (BCRYPT_*) and the cache of checked logins."""

    jwt_secret_key: SecretStr | None = Field(None, validation_alias="JWT_SECRET_KEY")
    jwt_algorithm: str = Field("HS256", validation_alias="JWT_ALGORITHM")
    # None: 720 in development, 1 otherwise (Settings.access_token_hours)
    jwt_access_token_expire_hours: float | None = Field(
        None, gt=0, validation_alias="JWT_ACCESS_TOKEN_EXPIRE_HOURS"
    )
    jwt_refresh_token_expire_days: float = Field(365, gt=0, validation_alias="JWT_REFRESH_TOKEN_EXPIRE_DAYS")
    # How long a checked login (auth session) is trusted without reading it again: a revocation
    # by another instance takes at most this long to count here; 0 reads it on every request.
    session_cache_seconds: float = Field(1.0, ge=0, le=60, validation_alias="AUTH_SESSION_CACHE_SECONDS")
    bcrypt_rounds: int = Field(12, ge=4, le=31, validation_alias="BCRYPT_ROUNDS")
    bcrypt_workers: int = Field(4, ge=1, validation_alias="BCRYPT_WORKERS")


class LlmSettings(_Group):
    """The model (unset ``api_key``: the offline model) and the agent's per-turn limits."""

    api_key: SecretStr | None = Field(None, validation_alias="LLM_API_KEY")
    # "provider:model" (anthropic:..., ollama:...; a bare name is OpenAI). LLM_API_KEY and
    # LLM_BASE_URL belong to this model's provider.
    model: ModelName = Field("gpt-4o-mini", validation_alias="LLM_MODEL")
    # Tried in order, per turn, when the model before gave up on a retryable failure.
    fallback_models: Annotated[CommaSeparated, AfterValidator(_distinct_models)] = Field(
        default_factory=list, validation_alias="LLM_FALLBACK_MODELS"
    )
    base_url: str | None = Field(None, validation_alias="LLM_BASE_URL")
    temperature: float = Field(0.2, validation_alias="LLM_TEMPERATURE")
    max_tokens: int = Field(2000, ge=1, validation_alias="LLM_MAX_TOKENS")
    context_tokens: int = Field(8000, ge=256, validation_alias="LLM_CONTEXT_TOKENS")
    retry_attempts: int = Field(3, ge=1, le=10, validation_alias="LLM_RETRY_ATTEMPTS")
    retry_backoff_seconds: float = Field(0.5, ge=0, validation_alias="LLM_RETRY_BACKOFF_SECONDS")
    # A whole turn: every model call, tool and retry.
    timeout_seconds: float = Field(60.0, gt=0, validation_alias="LLM_TIMEOUT_SECONDS")
    # One HTTP request to the model.
    request_timeout_seconds: float = Field(30.0, gt=0, validation_alias="LLM_REQUEST_TIMEOUT_SECONDS")
    recursion_limit: int = Field(12, ge=2, validation_alias="LLM_RECURSION_LIMIT")
    offline_token_delay_ms: float = Field(0.0, ge=0, validation_alias="OFFLINE_MODEL_TOKEN_DELAY_MS")
    # A JSON file declaring MCP servers whose tools the agent gets (README "MCP tools"); unset: none.
    mcp_config_file: Path | None = Field(None, validation_alias="MCP_CONFIG_FILE")
    # One MCP tool call (a stdio server's process start included).
    mcp_timeout_seconds: float = Field(30.0, gt=0, validation_alias="MCP_TIMEOUT_SECONDS")
    # Listing one MCP server's tools at start-up.
    mcp_connect_timeout_seconds: float = Field(30.0, gt=0, validation_alias="MCP_CONNECT_TIMEOUT_SECONDS")
    # Tools the agent may call only once the user approved (README "Approving tool calls"); names
    # as the model sees them (an MCP tool: <server>_<tool>).
    approval_tools: CommaSeparated = Field(default_factory=list, validation_alias="TOOLS_REQUIRING_APPROVAL")

    @field_validator("fallback_models")
    @classmethod
    def _not_the_model_itself(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("model") in value:
            raise ValueError(f"lists LLM_MODEL itself ({info.data['model']!r})")
        return value


class MemorySettings(_Group):
    """Long-term memory per user: facts stated in one chat, recalled in the user's later ones."""

    # Off: nothing is recalled into turns or learnt from them (stored memories can still be
    # listed and deleted, and go with the account).
    enabled: bool = Field(True, validation_alias="MEMORY_ENABLED")
    # The facts recalled into a turn's context (the most relevant first).
    recall_limit: int = Field(5, ge=1, le=50, validation_alias="MEMORY_RECALL_LIMIT")
    # Seconds a conversation's facts are learnt after its last answered message (quick turns are
    # learnt from together, in one model request).
    learn_delay_seconds: float = Field(10.0, ge=0, le=3600, validation_alias="MEMORY_LEARN_DELAY_SECONDS")
    # An embedding model at LLM_BASE_URL (with LLM_API_KEY) for semantic recall with pgvector;
    # unset: PostgreSQL full-text search (no network).
    embedding_model: str | None = Field(None, validation_alias="MEMORY_EMBEDDING_MODEL")
    embedding_dims: int = Field(1536, ge=1, le=16000, validation_alias="MEMORY_EMBEDDING_DIMS")


class RateLimitSettings(_Group):
    """Rate limits (README "Rate limits"; named as in ``RateLimitConfig``) and their
    storage: this process's memory, or Redis at ``redis_url`` shared by every instance."""

    enabled: bool = Field(True, validation_alias="RATE_LIMIT_ENABLED")
    default: RateLimit = Field("200 per day;50 per hour", validation_alias="RATE_LIMIT_DEFAULT")
    chat: RateLimit = Field("30 per minute", validation_alias="RATE_LIMIT_CHAT")
    chat_stream: RateLimit = Field("20 per minute", validation_alias="RATE_LIMIT_CHAT_STREAM")
    # ``register`` would shadow pydantic's ``BaseModel.register`` (ABCMeta's).
    registration: RateLimit = Field("10 per hour", validation_alias="RATE_LIMIT_REGISTER")
    login: RateLimit = Field("20 per minute", validation_alias="RATE_LIMIT_LOGIN")
    # Login attempts on one account from every address together (why these numbers:
    # RateLimitConfig.login_account); spent, even the right password waits for the window.
    login_account: RateLimit = Field("10 per minute;100 per day", validation_alias="RATE_LIMIT_LOGIN_ACCOUNT")
    # Addresses whose X-Forwarded-For is believed when finding who pays for a request.
    trusted_proxies: Annotated[CommaSeparated, AfterValidator(_addresses_or_networks)] = Field(
        default_factory=list, validation_alias="TRUSTED_PROXIES"
    )
    redis_url: SecretStr | None = Field(None, validation_alias="REDIS_URL")


class HttpSettings(_Group):
    """The server (``parley serve``) and the HTTP edge: address, CORS, request bounds, streams."""

    host: str = Field("127.0.0.1", validation_alias="HOST")
    port: int = Field(8000, validation_alias="PORT")
    cors_origins: CommaSeparated = Field(default_factory=list, validation_alias="CORS_ORIGINS")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, validation_alias="MAX_BODY_BYTES")
    # The time a connection has to deliver a whole request head (from connecting, or from the
    # previous response). A real client sends its head in one packet, at once: 10 s covers a
    # mobile link's retransmissions, is longer than uvicorn's 5 s keep-alive (which still closes
    # idle connections first), and holds a slowloris connection 10 s instead of forever
    # (nginx's client_header_timeout is 60 s, Go servers commonly set ReadHeaderTimeout to 5-10 s).
    # README "Slow clients".
    header_timeout_seconds: float = Field(10.0, gt=0, validation_alias="HTTP_HEADER_TIMEOUT_SECONDS")
    # The longest pause within a request body before the request ends with 408. 30 s: between
    # Apache's 20 s (mod_reqtimeout) and nginx's 60 s (client_body_timeout); a phone changing
    # networks resumes well within it, and bodies are small (MAX_BODY_BYTES).
    body_timeout_seconds: float = Field(30.0, gt=0, validation_alias="HTTP_BODY_TIMEOUT_SECONDS")
    # ": ping" after this long without an event.
    sse_ping_seconds: float = Field(15.0, gt=0, validation_alias="SSE_PING_SECONDS")
    # On SIGTERM, replies being streamed may go on this long before they are stopped (with an
    # `error` event). The server stops within about this plus 5 s: keep it under the
    # orchestrator's grace period (Kubernetes: 30 s by default).
    shutdown_grace_seconds: float = Field(20.0, ge=0, le=3600, validation_alias="SHUTDOWN_GRACE_SECONDS")


class ObservabilitySettings(_Group):
    """Logs, and Langfuse tracing (on when both keys are set)."""

    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool | None = Field(None, validation_alias="LOG_JSON")  # None: JSON outside development
    langfuse_public_key: SecretStr | None = Field(None, validation_alias="LANGFUSE_PUBLIC_KEY")
    langfuse_secret_key: SecretStr | None = Field(None, validation_alias="LANGFUSE_SECRET_KEY")
    langfuse_host: str = Field("https://cloud.langfuse.com", validation_alias="LANGFUSE_HOST")

    @property
    def langfuse_enabled(self) -> bool:
        return self.langfuse_public_key is not None and self.langfuse_secret_key is not None


class EvaluationSettings(_Group):
    """``parley eval``: the judge model (unset ``api_key``: the offline heuristic judge, not an
    LLM) and the runner's limits. The agent under evaluation comes from ``llm``."""

    judge_model: str = Field("gpt-4o-mini", validation_alias="EVALUATION_LLM")
    api_key: SecretStr | None = Field(None, validation_alias="EVALUATION_API_KEY")
    base_url: str | None = Field(None, validation_alias="EVALUATION_BASE_URL")
    # Cases run at once (each case's turns run in order, its metrics at once).
    concurrency: int = Field(4, ge=1, le=64, validation_alias="EVALUATION_CONCURRENCY")
    # One agent turn, or one judge request.
    timeout_seconds: float = Field(60.0, gt=0, validation_alias="EVALUATION_TIMEOUT_SECONDS")
    # Further attempts after a failed (or timed-out) turn or judge request; a judge's malformed
    # answer counts as a failed attempt.
    retries: int = Field(2, ge=0, le=10, validation_alias="EVALUATION_RETRIES")
    # A case passes a metric when its score is at least this.
    threshold: float = Field(0.7, ge=0, le=1, validation_alias="EVALUATION_THRESHOLD")
    # Holds datasets/, metrics/prompts/ and reports/.
    directory: Path = Field(Path("evaluation"), validation_alias="EVALUATION_DIR")

    @property
    def judge_is_llm(self) -> bool:
        return self.api_key is not None


class Settings(BaseSettings):
    """Every knob of Parley, grouped; each read from the variable its field names (see ``.env.example``)."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",  # sources give only known names: an unknown one is a mistyped override
        env_file_encoding="utf-8",
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    app_env: Environment = Field(Environment.DEVELOPMENT, validation_alias="APP_ENV")
    app_name: str = Field("Parley", validation_alias="APP_NAME")
    # Embedded PostgreSQL data and the generated development JWT secret.
    data_dir: Path = Field(Path(".parley"), validation_alias="DATA_DIR")
    # The longest chat message (the chat use cases' rule; the HTTP schema documents the default).
    max_message_chars: int = Field(
        DEFAULT_MAX_MESSAGE_LENGTH, ge=1, le=1_000_000, validation_alias="MAX_MESSAGE_CHARS"
    )
    # Name a chat still called "New chat" after its first exchange (the chat use cases' rule).
    chat_auto_title: bool = Field(True, validation_alias="CHAT_AUTO_TITLE")
    # How long a turn waits for the user to approve a tool call; then new messages are taken again.
    approval_timeout_seconds: float = Field(
        3600.0, gt=0, le=604_800, validation_alias="APPROVAL_TIMEOUT_SECONDS"
    )

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides in code, then the environment, then the ``.env`` files (their own order)."""
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        return (
            init_settings,
            _FlatVariables(settings_cls, env_settings.env_vars),
            _FlatVariables(settings_cls, dotenv_settings.env_vars),
        )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        return _without_blanks(data)

    @model_validator(mode="after")
    def _refuse_unsafe_deployments(self) -> Settings:
        if self.app_env is Environment.DEVELOPMENT:
            return self
        problems: list[str] = []
        secret = self.auth.jwt_secret_key.get_secret_value() if self.auth.jwt_secret_key else ""
        if not secret:
            problems.append("JWT_SECRET_KEY is required")
        elif len(secret.encode()) < MIN_SECRET_BYTES or _is_placeholder(secret):
            problems.append(f"JWT_SECRET_KEY must be a random value of at least {MIN_SECRET_BYTES} bytes")
        if self.db.url is None:
            problems.append("POSTGRES_URL (or DATABASE_URL) is required")
        elif _has_placeholder_password(self.db.url.get_secret_value()):
            # The env templates (deploy/env/) build the URL from POSTGRES_PASSWORD=change-me.
            problems.append("POSTGRES_URL's password is a placeholder: set a real one")
        if "*" in self.http.cors_origins:
            problems.append("CORS_ORIGINS must list explicit origins, not '*'")
        if problems:
            raise ValueError(f"refusing to start in {self.app_env.value}: " + "; ".join(problems))
        return self

    @property
    def is_development(self) -> bool:
        return self.app_env is Environment.DEVELOPMENT

    @property
    def access_token_hours(self) -> float:
        """``auth.jwt_access_token_expire_hours``, else 720 in development and 1 elsewhere."""
        if self.auth.jwt_access_token_expire_hours is not None:
            return self.auth.jwt_access_token_expire_hours
        return 720.0 if self.is_development else 1.0

    @property
    def json_logs(self) -> bool:
        """``observability.log_json``, else JSON lines everywhere but in development."""
        log_json = self.observability.log_json
        return (not self.is_development) if log_json is None else log_json


def _variables_of(field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    assert isinstance(alias, str), "every setting names its environment variable"
    return (alias,)


def _settings_and_variables() -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each setting's place (``("llm", "model")``, or ``("app_env",)``) and its variables, first preferred."""
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, _Group):
            for member, member_field in group.model_fields.items():
                yield (name, member), _variables_of(member_field)
        else:
            yield (name,), _variables_of(field)


class _FlatVariables(PydanticBaseSettingsSource):
    """One source of flat variables, the environment or the ``.env`` files: each setting is read
    from its own variable and put in its group (``LLM_MODEL=x`` gives ``{"llm": {"model": "x"}}``).

    ``variables``: the names in lower case, as pydantic-settings reads them (case-insensitively).
    Values stay strings: the settings' types parse them.
    """

    def __init__(self, settings_cls: type[BaseSettings], variables: Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._variables = variables

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError("_FlatVariables reads every setting in __call__")

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for place, names in _settings_and_variables():
            value = next((v for name in names if (v := self._variables.get(name.lower())) is not None), None)
            if value is None:
                continue
            *groups, name = place
            target = found
            for group in groups:
                target = target.setdefault(group, {})
            target[name] = value
        return found


def environment_variable_names() -> frozenset[str]:
    """Every environment variable Settings reads (upper case), aliases included.

    Deployment manifests and templates are checked against this: a variable they set that is
    not here would be silently ignored.
    """
    return frozenset(name for _, names in _settings_and_variables() for name in names)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from ``.env``, ``.env.<APP_ENV>`` and the environment; ``overrides``
    (grouped: ``limits={"chat": "5 per minute"}``) win over all three.

    In development with no ``JWT_SECRET_KEY``, a random secret is generated once and
    kept in ``<data_dir>/jwt_secret`` so tokens survive restarts.
    """
    app_env = str(overrides.get("app_env") or os.environ.get("APP_ENV") or Environment.DEVELOPMENT.value)
    try:
        settings = Settings(_env_file=(".env", f".env.{app_env}"), **overrides)
    except ValidationError as invalid:
        raise ConfigurationError(_describe(invalid)) from None
    if settings.auth.jwt_secret_key is None:
        secret = SecretStr(_local_secret(settings.data_dir))
        auth = settings.auth.model_copy(update={"jwt_secret_key": secret})
        settings = settings.model_copy(update={"auth": auth})
    return settings


def _variable_at(location: tuple[str | int, ...]) -> str:
    """The environment variable an error's location stands for (``("llm", "max_tokens")`` ->
    ``LLM_MAX_TOKENS``); items past the setting (a list index) are dropped."""
    for place, names in _settings_and_variables():
        *groups, name = place
        within = len(location) >= len(place) and location[: len(groups)] == tuple(groups)
        if within and location[len(groups)] in (name, *names):  # by name, or by variable (an alias)
            return names[0]
    return ".".join(str(part) for part in location).upper()


def _describe(invalid: ValidationError) -> str:
    parts = []
    for error in invalid.errors():
        if error["type"] == "extra_forbidden":  # an override in code, never a variable
            parts.append(f"{'.'.join(map(str, error['loc']))}: no such setting (overrides are grouped)")
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{_variable_at(error['loc'])}: {message}" if error["loc"] else message)
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
