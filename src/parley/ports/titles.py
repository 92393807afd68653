"""The port that suggests a chat's title after its first exchange."""

from __future__ import annotations

from typing import Protocol


class TitleWriter(Protocol):
    """Suggests a short title for a conversation from its first exchange.

    The answer is a suggestion: the caller cleans and validates it as a conversation name
    (:meth:`parley.domain.chat.ConversationName.from_suggestion`). Any exception means no title;
    the caller bounds the time it waits.
    """

    async def suggest(self, first_message: str, reply: str) -> str: ...
