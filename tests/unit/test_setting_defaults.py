"""Each default is written once: where an adapter or a use case has a default of its own for
something a setting controls, it must be the setting's default (a fresh install and a test that
builds the piece by hand behave alike)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
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


# (default found in the code, the setting that owns it)
PAIRS: list[tuple[str, Callable[[], Any], Callable[[Settings], Any]]] = [
    ("ModelConfig.name", lambda: _dataclass_defaults(ModelConfig)["name"], lambda s: s.llm_model),
    (
        "ModelConfig.temperature",
        lambda: _dataclass_defaults(ModelConfig)["temperature"],
        lambda s: s.llm_temperature,
    ),
    (
        "ModelConfig.max_tokens",
        lambda: _dataclass_defaults(ModelConfig)["max_tokens"],
        lambda s: s.llm_max_tokens,
    ),
    (
        "ModelConfig.request_timeout",
        lambda: _dataclass_defaults(ModelConfig)["request_timeout"],
        lambda s: s.llm_request_timeout_seconds,
    ),
    (
        "AgentLimits.context_tokens",
        lambda: _dataclass_defaults(AgentLimits)["context_tokens"],
        lambda s: s.llm_context_tokens,
    ),
    (
        "AgentLimits.turn_timeout",
        lambda: _dataclass_defaults(AgentLimits)["turn_timeout"],
        lambda s: s.llm_timeout_seconds,
    ),
    (
        "AgentLimits.recursion_limit",
        lambda: _dataclass_defaults(AgentLimits)["recursion_limit"],
        lambda s: s.llm_recursion_limit,
    ),
    (
        "AgentLimits.max_attempts",
        lambda: _dataclass_defaults(AgentLimits)["max_attempts"],
        lambda s: s.llm_retry_attempts,
    ),
    (
        "AgentLimits.backoff_base",
        lambda: _dataclass_defaults(AgentLimits)["backoff_base"],
        lambda s: s.llm_retry_backoff_seconds,
    ),
    (
        "LangGraphChatAgent(pool_size)",
        lambda: _parameter_defaults(LangGraphChatAgent.__init__)["pool_size"],
        lambda s: s.postgres_pool_size,
    ),
    (
        "PasslibBcryptHasher(rounds)",
        lambda: _parameter_defaults(PasslibBcryptHasher.__init__)["rounds"],
        lambda s: s.bcrypt_rounds,
    ),
    (
        "PasslibBcryptHasher(max_workers)",
        lambda: _parameter_defaults(PasslibBcryptHasher.__init__)["max_workers"],
        lambda s: s.bcrypt_workers,
    ),
    (
        "RecentAuthSessions(ttl)",
        lambda: _parameter_defaults(RecentAuthSessions.__init__)["ttl"],
        lambda s: s.auth_session_cache_seconds,
    ),
    (
        "TurnPolicy.max_message_chars",
        lambda: _dataclass_defaults(TurnPolicy)["max_message_chars"],
        lambda s: s.max_message_chars,
    ),
    *[
        (
            f"RateLimitConfig.{name}",
            lambda name=name: _dataclass_defaults(RateLimitConfig)[name],
            lambda s, name=name: getattr(s, "rate_limit_" + name),
        )
        for name in ("enabled", "default", "chat", "chat_stream", "register", "login", "login_account")
    ],
]


@pytest.mark.parametrize(("where", "in_code", "in_settings"), PAIRS, ids=[pair[0] for pair in PAIRS])
def test_a_default_in_the_code_is_the_settings_default(
    where: str, in_code: Callable[[], Any], in_settings: Callable[[Settings], Any], settings: Settings
) -> None:
    assert in_code() == in_settings(settings), f"{where} drifted from its setting's default"
