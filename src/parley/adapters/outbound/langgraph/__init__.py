"""LangGraph outbound adapter: the :class:`~parley.ports.agent.ChatAgent` port on a LangGraph graph.

Names are loaded on first use (PEP 562): LangGraph, LangChain and the openai SDK take
seconds to import without cached bytecode, so importing the package costs nothing and
the libraries load when the agent is first built (``parley --help``, ``create_app`` and
uvicorn's worker start-up never pay for them).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parley.adapters.outbound.langgraph.agent import (
        DEFAULT_SYSTEM_PROMPT,
        AgentLimits,
        LangGraphChatAgent,
    )
    from parley.adapters.outbound.langgraph.chat_model import ModelConfig
    from parley.adapters.outbound.langgraph.offline_model import OFFLINE_PREFIX, OfflineChatModel

_HOMES = {
    "DEFAULT_SYSTEM_PROMPT": "agent",
    "AgentLimits": "agent",
    "LangGraphChatAgent": "agent",
    "ModelConfig": "chat_model",
    "OFFLINE_PREFIX": "offline_model",
    "OfflineChatModel": "offline_model",
}
__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "OFFLINE_PREFIX",
    "AgentLimits",
    "LangGraphChatAgent",
    "ModelConfig",
    "OfflineChatModel",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
