"""Each default is written once: where an adapter or a use case has a default of its own for
something a setting controls, it must be the setting's default (a fresh install and a test that
builds the piece by hand behave alike)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from operator import attrgetter
from typing import Any

import pytest

from parley.adapters.inbound.http.rate_limits import RateLimitConfig
from parley.adapters.outbound.bcrypt.hasher import PasslibBcryptHasher
from parley.adapters.outbound.judge.openai_judge import OpenAIJudge
from parley.adapters.outbound.langgraph.agent import AgentLimits, LangGraphChatAgent
from parley.adapters.outbound.langgraph.chat_model import ModelConfig
from parley.adapters.outbound.langgraph.mcp_tools import McpConfig
from parley.application.chat.titles import ChatTitles
from parley.application.chat.turns import TurnPolicy
from parley.application.evaluation.runner import RunnerLimits
from parley.application.memory import UserMemory
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
def settings() -> Settings:
    """The declared defaults only: no environment variable or ``.env`` file is read."""
    return Settings.model_construct()


# (where the code has a default: a dataclass, or a callable's parameter; its name; the setting)
PAIRS: list[tuple[Any, str, str]] = [
    (ModelConfig, "name", "llm.model"),
    (ModelConfig, "temperature", "llm.temperature"),
    (ModelConfig, "max_tokens", "llm.max_tokens"),
    (ModelConfig, "request_timeout", "llm.request_timeout_seconds"),
    (AgentLimits, "context_tokens", "llm.context_tokens"),
    (AgentLimits, "turn_timeout", "llm.timeout_seconds"),
    (AgentLimits, "recursion_limit", "llm.recursion_limit"),
    (AgentLimits, "max_attempts", "llm.retry_attempts"),
    (AgentLimits, "backoff_base", "llm.retry_backoff_seconds"),
    (LangGraphChatAgent.__init__, "pool_size", "db.pool_size"),
    (McpConfig, "timeout", "llm.mcp_timeout_seconds"),
    (McpConfig, "connect_timeout", "llm.mcp_connect_timeout_seconds"),
    (PasslibBcryptHasher.__init__, "rounds", "auth.bcrypt_rounds"),
    (PasslibBcryptHasher.__init__, "max_workers", "auth.bcrypt_workers"),
    (RecentAuthSessions.__init__, "ttl", "auth.session_cache_seconds"),
    (TurnPolicy, "max_message_chars", "max_message_chars"),
    (ChatTitles.__init__, "enabled", "chat_auto_title"),
    (UserMemory.__init__, "recall_limit", "memory.recall_limit"),
    (UserMemory.__init__, "delay", "memory.learn_delay_seconds"),
    (RunnerLimits, "concurrency", "evaluation.concurrency"),
    (RunnerLimits, "timeout", "evaluation.timeout_seconds"),
    (RunnerLimits, "retries", "evaluation.retries"),
    (OpenAIJudge.__init__, "request_timeout", "evaluation.timeout_seconds"),
    (RateLimitConfig, "register", "limits.registration"),
    *[
        (RateLimitConfig, name, f"limits.{name}")
        for name in ("enabled", "default", "chat", "chat_stream", "login", "login_account")
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
    assert _default_in_code(owner, name) == attrgetter(setting)(settings), (
        f"{name} drifted from settings.{setting}"
    )


def test_no_fallback_models_by_default_in_the_code_or_the_settings(settings: Settings) -> None:
    # A list setting and a tuple field: compared as sequences (the pairs above compare values).
    assert ModelConfig().fallbacks == tuple(settings.llm.fallback_models) == ()


def test_a_paused_turn_waits_as_long_as_the_setting_says_by_default(settings: Settings) -> None:
    assert TurnPolicy().approval_ttl.total_seconds() == settings.approval_timeout_seconds


def test_no_tool_needs_approval_by_default(settings: Settings) -> None:
    assert _parameter_defaults(LangGraphChatAgent.__init__)["approval_tools"] == frozenset(
        settings.llm.approval_tools
    )
