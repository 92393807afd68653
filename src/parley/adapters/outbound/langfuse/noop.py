"""The tracer used when no tracing backend is configured."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID


class NoopTurnTrace:
    """A turn trace that drops everything; every method returns at once."""

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
    ) -> None:
        return None

    def tool(self, *, name: str, arguments: dict[str, Any], result: str, at: datetime) -> None:
        return None

    def retry(self, *, model: str, attempt: int, reason: str) -> None:
        return None

    def error(self, *, kind: str, model: str | None) -> None:
        return None

    def end(self, *, status: str, output: str, ended_at: datetime) -> None:
        return None


# One shared instance: it holds no state, so turns need not allocate their own.
_NOOP_TURN = NoopTurnTrace()


class NoopTracer:
    """``Tracer`` that records nothing (used when Langfuse keys are missing).

    Contract: costs one attribute lookup per call, never raises, never does I/O.
    """

    def start_turn(
        self, *, user_id: UUID, conversation_id: UUID, input_text: str, streaming: bool, started_at: datetime
    ) -> NoopTurnTrace:
        return _NOOP_TURN

    async def aclose(self) -> None:
        return None
