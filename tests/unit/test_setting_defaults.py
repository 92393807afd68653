"""Each default is written once: where an adapter or a use case has a default of its own for
something a setting controls, it must be the setting's default (a fresh install and a test that
builds the piece by hand behave alike)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from parley.adapters.inbound.http.rate_limits import RateLimitConfig
from parley.adapters.outbound.bcrypt.hasher import PasslibBcryptHasher
from parley.adapters.outbound.langgraph.agent import AgentLimits, LangGraphChatAgent
from parley.adapters.outbound.langgraph.chat_model import ModelConfig
from parley.application.chat.turns import TurnPolicy
from parley.application.session_cache import RecentAuthSessions
from parley.config import Settings

pytestmark = pytest.mark.unit


def _dataclass_defaults(cls: type[Any]) -> dict[str, Any]:
    return {f.name: f.default for f in fields(cls)}


def _parameter_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("data")
    return Settings(_env_file=None, jwt_secret_key="k" * 40, data_dir=data_dir)


# (where the code has a default: a dataclass, or a callable's parameter; its name; the setting)
PAIRS: list[tuple[Any, str, str]] = [
    (ModelConfig, "name", "llm_model"),
    (ModelConfig, "temperature", "llm_temperature"),
    (ModelConfig, "max_tokens", "llm_max_tokens"),
    (ModelConfig, "request_timeout", "llm_request_timeout_seconds"),
    (AgentLimits, "context_tokens", "llm_context_tokens"),
    (AgentLimits, "turn_timeout", "llm_timeout_seconds"),
    (AgentLimits, "recursion_limit", "llm_recursion_limit"),
    (AgentLimits, "max_attempts", "llm_retry_attempts"),
    (AgentLimits, "backoff_base", "llm_retry_backoff_seconds"),
    (LangGraphChatAgent.__init__, "pool_size", "postgres_pool_size"),
    (PasslibBcryptHasher.__init__, "rounds", "bcrypt_rounds"),
    (PasslibBcryptHasher.__init__, "max_workers", "bcrypt_workers"),
    (RecentAuthSessions.__init__, "ttl", "auth_session_cache_seconds"),
    (TurnPolicy, "max_message_chars", "max_message_chars"),
    *[
        (RateLimitConfig, name, "rate_limit_" + name)
        for name in ("enabled", "default", "chat", "chat_stream", "register", "login", "login_account")
    ],
]


def _default_in_code(owner: Any, name: str) -> Any:
    if isinstance(owner, type) and is_dataclass(owner):
        return _dataclass_defaults(owner)[name]
    return _parameter_defaults(owner)[name]


@pytest.mark.parametrize(
    ("owner", "name", "setting"), PAIRS, ids=[f"{owner.__qualname__}.{name}" for owner, name, _ in PAIRS]
)
def test_a_default_in_the_code_is_the_settings_default(
    owner: Any, name: str, setting: str, settings: Settings
) -> None:
    assert _default_in_code(owner, name) == getattr(settings, setting), (
        f"{name} drifted from {setting.upper()}"
    )
