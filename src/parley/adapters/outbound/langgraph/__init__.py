"""LangGraph outbound adapter: the :class:`~parley.ports.agent.ChatAgent` port on a LangGraph graph."""

from parley.adapters.outbound.langgraph.agent import DEFAULT_SYSTEM_PROMPT, AgentLimits, LangGraphChatAgent
from parley.adapters.outbound.langgraph.chat_model import ModelConfig
from parley.adapters.outbound.langgraph.offline_model import OFFLINE_PREFIX, OfflineChatModel

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "OFFLINE_PREFIX",
    "AgentLimits",
    "LangGraphChatAgent",
    "ModelConfig",
    "OfflineChatModel",
]
