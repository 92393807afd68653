"""The :class:`~parley.ports.titles.TitleWriter` port: the configured chat model, or offline.

- :class:`ModelTitleWriter`: one small non-streamed call to the chat model (no tools, a strict
  prompt, a few tokens); the caller bounds the time and cleans the answer;
- :class:`OfflineTitleWriter`: deterministic, used with the offline model: the first words of
  the user's message. It answers without waiting, so its title is stored with the first reply.
"""

from __future__ import annotations

from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from parley.adapters.outbound.langgraph.chat_model import ModelConfig, build_chat_model, close_chat_model

TITLE_PROMPT = (
    "You name chat conversations. Reply with a title for the conversation below: at most six "
    "words, in the language of the user's message, no quotes, no final punctuation, nothing else."
)
# What of the exchange the model sees: enough to name it, cheap to send.
_EXCERPT_CHARS = 1000
TITLE_MAX_TOKENS = 24
OFFLINE_TITLE_WORDS = 6
OFFLINE_TITLE_CHARS = 60


class ModelTitleWriter:
    """Asks ``model`` (a chat model without tools) for a title; :meth:`aclose` releases it."""

    def __init__(self, model: BaseChatModel) -> None:
        self._model = model

    async def suggest(self, first_message: str, reply: str) -> str:
        exchange = f"User: {first_message[:_EXCERPT_CHARS]}\n\nAssistant: {reply[:_EXCERPT_CHARS]}"
        answer = await self._model.ainvoke([SystemMessage(TITLE_PROMPT), HumanMessage(exchange)])
        return answer.text

    async def aclose(self) -> None:
        await close_chat_model(self._model)


class OfflineTitleWriter:
    """The first :data:`OFFLINE_TITLE_WORDS` words of the user's message, at most
    :data:`OFFLINE_TITLE_CHARS` characters (cut at a space when it can)."""

    async def suggest(self, first_message: str, reply: str) -> str:
        words = " ".join(first_message.split()[:OFFLINE_TITLE_WORDS])
        if len(words) <= OFFLINE_TITLE_CHARS:
            return words
        cut = words[:OFFLINE_TITLE_CHARS]
        return cut[: cut.rfind(" ")] if " " in cut else cut


def build_title_writer(config: ModelConfig) -> ModelTitleWriter | OfflineTitleWriter:
    """The offline writer with the offline model; else the chat model, asked for a few tokens."""
    if config.is_offline:
        return OfflineTitleWriter()
    return ModelTitleWriter(build_chat_model(replace(config, temperature=0.0, max_tokens=TITLE_MAX_TOKENS)))
