"""Tracing port: observes chat turns (LLM generations, tool calls, errors).

Contract: implementations never raise into the caller and never block it on the
network; a tracer that cannot reach its backend drops data instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


class TurnTrace(Protocol):
    """One chat turn. Methods are called in the order things happened."""

    def generation(
        self,
        *,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        started_at: datetime,
        first_token_at: datetime | None,
        ended_at: datetime,
        output: str,
    ) -> None: ...

    def tool(self, *, name: str, arguments: dict[str, Any], result: str, at: datetime) -> None: ...

    def retry(self, *, model: str, attempt: int, reason: str) -> None: ...

    def error(self, *, kind: str, model: str | None) -> None: ...

    def end(self, *, status: str, output: str, ended_at: datetime) -> None: ...


class Tracer(Protocol):
    def start_turn(
        self, *, user_id: UUID, conversation_id: UUID, input_text: str, streaming: bool, started_at: datetime
    ) -> TurnTrace: ...

    async def aclose(self) -> None:
        """Flush what is buffered (bounded in time) and release resources."""
        ...
