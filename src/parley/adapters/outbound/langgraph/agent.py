"""``LangGraphChatAgent``: the :class:`~parley.ports.agent.ChatAgent` port on LangGraph.

Memory lives in a LangGraph checkpointer keyed by ``thread_id = str(conversation_id)``:
PostgreSQL (``AsyncPostgresSaver`` on the adapter's own small psycopg pool, never a
connection of the caller) in production, or ``InMemorySaver`` for unit tests and
benchmarks. Without an API key the
deterministic :class:`OfflineChatModel` replaces ``ChatOpenAI`` in the same graph.
The tools are the built-in ones plus, with ``mcp``, those of the configured MCP servers
that answer at start-up (:mod:`~parley.adapters.outbound.langgraph.mcp_tools`).

Lifecycle: ``await agent.start()`` (opens the pool, creates the checkpoint tables)
before the first turn and ``await agent.aclose()`` at shutdown, or
``async with agent: ...``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from uuid import UUID

import psycopg
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.errors import GraphRecursionError
from langgraph.types import Command
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from parley.adapters.outbound.langgraph.approvals import decision_record
from parley.adapters.outbound.langgraph.chat_model import (
    ModelConfig,
    NamedModel,
    build_chat_models,
    close_chat_model,
)
from parley.adapters.outbound.langgraph.checkpoints import (
    SettlingMemorySaver,
    SettlingPostgresSaver,
    SettlingSaver,
    migrate_checkpoint_schema,
    postgres_pool,
)
from parley.adapters.outbound.langgraph.failures import RetryPolicy
from parley.adapters.outbound.langgraph.graph import (
    EMIT,
    MEMORIES,
    MODEL_CURSOR,
    STREAM_TOKENS,
    AgentGraph,
    ModelCursor,
    build_agent_graph,
)
from parley.adapters.outbound.langgraph.tools import default_tools

if TYPE_CHECKING:
    from parley.adapters.outbound.langgraph.mcp_tools import McpConfig
from parley.ports.agent import (
    AgentError,
    AgentEvent,
    AgentResume,
    AgentTimeout,
    AgentTurn,
    AgentUnavailable,
    ApprovalRequested,
    EventSink,
)
from parley.ports.persistence import StorageUnavailable

_log = logging.getLogger(__name__)

# The checkpoint store cannot be reached or went away (refused, reset, pool exhausted):
# the database's fault, not the model's, so the turn ends with StorageUnavailable (503).
_STORE_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)

DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a helpful assistant. Answer concisely. Use the calculator tool for arithmetic "
    "and the current_time tool when asked about the date or time."
)
CheckpointStore = Literal["postgres", "memory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLimits:
    """Per-turn limits.

    - ``context_tokens``: approximate token budget of the context sent to the model
      (separate from the reply's ``max_tokens``);
    - ``turn_timeout``: seconds the whole turn (all model calls, tools, retries) may take;
    - ``recursion_limit``: LangGraph super-steps per turn (bounds tool loops);
    - ``max_attempts`` / ``backoff_base`` / ``backoff_max``: the retry policy.
    """

    context_tokens: int = 8000
    turn_timeout: float = 60.0
    recursion_limit: int = 12
    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0


class _SentEvents:
    """Forwards a run's events to the caller's sink, remembering whether any went out."""

    __slots__ = ("_emit", "any")

    def __init__(self, emit: EventSink) -> None:
        self._emit, self.any = emit, False

    def __call__(self, event: AgentEvent) -> None:
        self.any = True
        self._emit(event)


class LangGraphChatAgent:
    """A :class:`~parley.ports.agent.ChatAgent` running a LangGraph tool-calling graph.

    ``checkpoint_store="postgres"`` needs ``postgres_url`` (a libpq ``postgresql://`` URL);
    ``"memory"`` keeps threads in this process only. ``start`` raises
    :class:`AgentUnavailable` when the database cannot be reached within ``connect_timeout``.
    """

    def __init__(
        self,
        *,
        postgres_url: str | None = None,
        checkpoint_store: CheckpointStore = "postgres",
        model: ModelConfig | None = None,
        limits: AgentLimits | None = None,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        pool_size: int = 10,
        pool_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        mcp: McpConfig | None = None,
        approval_tools: frozenset[str] = frozenset(),
    ) -> None:
        if checkpoint_store == "postgres" and not postgres_url:
            raise ValueError("checkpoint_store='postgres' needs postgres_url")
        self._postgres_url = postgres_url
        self._store: CheckpointStore = checkpoint_store
        self._model_config = model or ModelConfig()
        self._limits = limits or AgentLimits()
        self._policy = RetryPolicy(
            max_attempts=self._limits.max_attempts,
            backoff_base=self._limits.backoff_base,
            backoff_max=self._limits.backoff_max,
        )
        self._system_prompt = system_prompt
        self._pool_size, self._pool_timeout = pool_size, pool_timeout
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] | None = None
        self._checkpointer: SettlingSaver | None = None
        self._graph: AgentGraph | None = None
        self._models: list[NamedModel] = []
        self._mcp = mcp
        self._approval_tools = approval_tools
        self._tool_names: tuple[str, ...] = ()

    @property
    def model_name(self) -> str:
        """The configured model's name (the offline model's when there is no API key); the
        name a failure is reported with when no model answered (see ``Usage.model``)."""
        return self._model_config.effective_name

    @property
    def tool_names(self) -> tuple[str, ...]:
        """The names of the tools the model is offered (known once started)."""
        return self._tool_names

    async def start(self) -> None:
        """Open the checkpoint store (creating its tables) and compile the graph. Idempotent."""
        if self._graph is not None:
            return
        self._checkpointer = await self._open_checkpointer()
        self._models = build_chat_models(self._model_config)
        tools = await self._tools()
        self._tool_names = tuple(tool.name for tool in tools)
        unknown = sorted(self._approval_tools - set(self._tool_names))
        if unknown:
            # Not refused: an MCP server that did not answer at start-up leaves its tools out.
            _log.warning(
                "TOOLS_REQUIRING_APPROVAL names tools the agent does not have: %s", ", ".join(unknown)
            )
        self._graph = build_agent_graph(
            models=self._models,
            tools=tools,
            system_prompt=self._system_prompt,
            context_budget=self._limits.context_tokens,
            policy=self._policy,
            checkpointer=self._checkpointer,
            approval_tools=self._approval_tools,
        )

    async def _tools(self) -> list[BaseTool]:
        """The built-in tools, plus those of the configured MCP servers that answered (a
        server that did not is logged and left out: it never fails the start-up)."""
        tools = default_tools()
        if self._mcp is None:
            return tools
        # Imported only when MCP servers are configured: the mcp SDK is not free to import.
        from parley.adapters.outbound.langgraph.mcp_tools import load_mcp_tools

        return [*tools, *await load_mcp_tools(self._mcp, reserved=[tool.name for tool in tools])]

    async def aclose(self) -> None:
        """Release the model's connections and the pool. Idempotent; ``start`` may follow."""
        self._graph = None
        self._checkpointer = None
        models, self._models = self._models, []
        for named in models:
            await close_chat_model(named.model)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _open_checkpointer(self) -> SettlingSaver:
        if self._store == "memory":
            return SettlingMemorySaver()
        pool = postgres_pool(str(self._postgres_url), self._pool_size, timeout=self._pool_timeout)
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            await migrate_checkpoint_schema(pool)
        except (PoolTimeout, TimeoutError, psycopg.Error) as error:
            await pool.close()
            raise AgentUnavailable("the agent's checkpoint store is unreachable") from error
        self._pool = pool
        return SettlingPostgresSaver(pool)

    def _require_checkpointer(self) -> SettlingSaver:
        if self._checkpointer is None:
            raise RuntimeError("LangGraphChatAgent.start() was not awaited")
        return self._checkpointer

    def _require_graph(self) -> AgentGraph:
        if self._graph is None:
            raise RuntimeError("LangGraphChatAgent.start() was not awaited")
        return self._graph

    def _config(self, turn: AgentTurn | AgentResume, emit: EventSink) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": str(turn.conversation_id),
                STREAM_TOKENS: turn.stream_tokens,
                EMIT: emit,
                MODEL_CURSOR: ModelCursor(),
                MEMORIES: turn.memories,
            },
            "recursion_limit": self._limits.recursion_limit,
        }

    async def run(self, turn: AgentTurn, emit: EventSink) -> None:
        """Run one turn, handing port events (see :mod:`.graph`) to ``emit`` as they happen.

        Raises :class:`AgentTimeout` once the turn has taken ``turn_timeout`` seconds,
        :class:`StorageUnavailable` when the checkpoint store cannot be reached, and
        :class:`AgentUnavailable` for any model, tool-loop or other failure.
        Cancelling it cancels the graph run and its in-flight model request; the
        checkpoint writes LangGraph still makes for the cancelled step are awaited first.
        """
        message = {"messages": [HumanMessage(content=turn.content)]}
        await self._drive(turn, message, emit)

    async def resume(self, resume: AgentResume, emit: EventSink) -> None:
        """Apply the user's decision to the tool call the conversation paused on and go on, as
        :meth:`run` does (the same errors; it may pause again)."""
        await self._drive(resume, Command(resume=decision_record(resume.decision)), emit)

    async def _drive(self, turn: AgentTurn | AgentResume, graph_input: Any, emit: EventSink) -> None:
        """Run the graph on ``graph_input`` (see :meth:`run` for the errors and cancellation)."""
        graph = self._require_graph()
        sent = _SentEvents(emit)
        try:
            async with asyncio.timeout(self._limits.turn_timeout) as deadline:
                # Run again only if nothing was sent yet: a second run would repeat it.
                await self._once_more_after_a_restart(
                    lambda: self._invoke(graph, turn, graph_input, sent), may_repeat=lambda: not sent.any
                )
        except TimeoutError as error:
            if not deadline.expired():
                # Not our deadline: something inside the run timed out on its own.
                raise AgentUnavailable("the agent timed out internally", model=self.model_name) from error
            raise AgentTimeout("the turn exceeded its time budget", model=self.model_name) from error
        except AgentError:
            raise
        except _STORE_UNREACHABLE as error:
            raise StorageUnavailable("the agent's checkpoint store is unreachable") from error
        except GraphRecursionError as error:
            raise AgentUnavailable("the agent exceeded its step limit", model=self.model_name) from error
        except Exception as error:
            _log.exception("agent turn failed unexpectedly")
            raise AgentUnavailable("the agent failed", model=self.model_name) from error
        finally:
            # Writes LangGraph still makes for a cancelled step must not outlive the run.
            await self._require_checkpointer().settle(str(turn.conversation_id))

    async def _invoke(
        self, graph: AgentGraph, turn: AgentTurn | AgentResume, graph_input: Any, emit: EventSink
    ) -> None:
        result = await graph.ainvoke(
            graph_input,
            self._config(turn, emit),
            # One checkpoint write when the run ends (also on error or cancellation,
            # LangGraph persists on exit) instead of one per step: ~15 % less CPU per
            # turn. Memory is only needed between turns, never mid-turn.
            durability="exit",
        )
        # The run paused on a tool call needing approval: said once the pause is checkpointed.
        for pause in result.get("__interrupt__", ()):
            asked = pause.value
            emit(ApprovalRequested(tool=str(asked["tool"]), arguments=dict(asked["arguments"])))

    async def _once_more_after_a_restart(
        self, operation: Callable[[], Awaitable[None]], *, may_repeat: Callable[[], bool] = lambda: True
    ) -> None:
        """Run a checkpoint ``operation``; if a connection the pool lent had died (the database
        restarted since), check every idle pooled connection, replacing the dead ones, and run
        it once more (when ``may_repeat()``).

        Why not check each connection as it is lent (psycopg_pool's ``check=``): one more round
        trip per checkpoint operation cost a 1,000-stream burst ~0.7 s of time to first token
        (p50 4.3 -> 5.0 s, bench ``slow``). Dead connections only exist after the database went
        away, and the first operation that meets one clears them all.
        """
        try:
            await operation()
        except _STORE_UNREACHABLE:
            if self._pool is None or not may_repeat():
                raise
            await self._pool.check()
            await operation()

    async def forget(self, conversation_id: UUID) -> None:
        """Delete every checkpoint of the conversation's thread (idempotent); raises
        :class:`StorageUnavailable` when the checkpoint store cannot be reached."""
        saver = self._require_checkpointer()
        thread_id = str(conversation_id)
        try:
            await saver.settle(thread_id)  # a write landing after the delete would resurrect rows
            await self._once_more_after_a_restart(lambda: saver.adelete_thread(thread_id))
        except _STORE_UNREACHABLE as error:
            raise StorageUnavailable("the agent's checkpoint store is unreachable") from error
