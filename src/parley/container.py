"""The composition root: with :mod:`parley.bootstrap` (which starts and stops what it
declares), the only module that names concrete adapters.

Singletons hold the expensive, shared things (engine, hasher pool, agent, tracer);
Factories make a fresh use case per request. Providers stay synchronous; async
start-up and shutdown happen in :mod:`parley.bootstrap`, called by the app's lifespan.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from parley.adapters.outbound.bcrypt import PasslibBcryptHasher
from parley.adapters.outbound.jwt import PyJwtTokenIssuer
from parley.adapters.outbound.postgres.engine import create_engine
from parley.adapters.outbound.postgres.probe import PostgresDatabaseProbe
from parley.adapters.outbound.postgres.reply_slots import PostgresReplySlots
from parley.adapters.outbound.postgres.unit_of_work import postgres_unit_of_work_factory
from parley.adapters.outbound.prometheus import PrometheusTracer
from parley.adapters.outbound.redis import make_rate_limit_storage
from parley.adapters.outbound.system import SystemClock, Uuid4Generator
from parley.application.auth import Authenticate, LogIn, LogOut, RefreshTokens, RegisterUser
from parley.application.chat.conversations import (
    CreateConversation,
    DeleteConversation,
    GetConversation,
    ListConversations,
    RenameConversation,
)
from parley.application.chat.history import ClearMessages, ListMessages
from parley.application.chat.running import DeferredWrites, RunningTurns
from parley.application.chat.sending import (
    DecideApproval,
    GetPendingApproval,
    SendMessage,
    StreamDecision,
    StreamReply,
)
from parley.application.chat.titles import ChatTitles
from parley.application.chat.turns import TurnPolicy, TurnServices
from parley.application.memory import ForgetAllMemories, ForgetMemory, ListMemories, UserMemory
from parley.application.session_cache import RecentAuthSessions
from parley.application.tracing import CompositeTracer
from parley.application.users import ChangeEmail, ChangePassword, DeleteAccount, GetProfile
from parley.config import (
    ConfigurationError,
    DatabaseSettings,
    EvaluationSettings,
    LlmSettings,
    MemorySettings,
    ObservabilitySettings,
    Settings,
)

if TYPE_CHECKING:
    from parley.adapters.outbound.judge import HeuristicJudge
    from parley.adapters.outbound.judge.openai_judge import OpenAIJudge
    from parley.adapters.outbound.langfuse import (
        LangfuseScoreSink,
        LangfuseTracer,
        LangfuseTraceSource,
        NoopTracer,
    )
    from parley.adapters.outbound.langgraph import LangGraphChatAgent, ModelConfig
    from parley.adapters.outbound.langgraph.facts import ModelFactExtractor, OfflineFactExtractor
    from parley.adapters.outbound.langgraph.mcp_tools import McpConfig
    from parley.adapters.outbound.langgraph.memory_store import MemoryEmbeddings, PostgresMemoryStore
    from parley.adapters.outbound.langgraph.titles import ModelTitleWriter, OfflineTitleWriter


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _chat_agent(
    llm: LlmSettings, db: DatabaseSettings, postgres_url: str | None, *, in_memory: bool = False
) -> LangGraphChatAgent:
    """The LangGraph agent. Imported here, when the agent is built at start-up: LangGraph,
    LangChain and the openai SDK take seconds to import, which ``create_app`` and the CLI
    must not pay (uvicorn kills a worker that does not answer its health ping in time).

    ``in_memory``: the agent remembers conversations in this process only (``parley eval``,
    whose conversations are thrown away after each case: no database is needed)."""
    from parley.adapters.outbound.langgraph import AgentLimits, LangGraphChatAgent, ModelConfig

    if missing := _missing_model_packages(llm):
        raise ConfigurationError("; ".join(missing))
    model = ModelConfig(
        name=llm.model,
        fallbacks=tuple(llm.fallback_models),
        api_key=_secret(llm.api_key),
        base_url=llm.base_url,
        temperature=llm.temperature,
        max_tokens=llm.max_tokens,
        request_timeout=llm.request_timeout_seconds,
        offline_token_delay=llm.offline_token_delay_ms / 1000,
    )
    limits = AgentLimits(
        context_tokens=llm.context_tokens,
        turn_timeout=llm.timeout_seconds,
        recursion_limit=llm.recursion_limit,
        max_attempts=llm.retry_attempts,
        backoff_base=llm.retry_backoff_seconds,
    )
    return LangGraphChatAgent(
        postgres_url=postgres_url,
        checkpoint_store="memory" if in_memory else "postgres",
        model=model,
        limits=limits,
        pool_size=db.pool_size,
        # Turns queue for a checkpoint connection before the pool (see SettlingPostgresSaver):
        # the pool itself only waits while its connections are re-made (the database is away).
        pool_timeout=min(db.pool_timeout, 5.0),
        mcp=_mcp_config(llm),
        approval_tools=frozenset(llm.approval_tools),
    )


def _mcp_config(llm: LlmSettings) -> McpConfig | None:
    """The MCP servers' configuration, when a file declares some. The mcp SDK is imported only
    then: an install without MCP servers does not pay for it at start-up."""
    if llm.mcp_config_file is None:
        return None
    from parley.adapters.outbound.langgraph.mcp_tools import McpConfig

    return McpConfig(
        config_file=llm.mcp_config_file,
        timeout=llm.mcp_timeout_seconds,
        connect_timeout=llm.mcp_connect_timeout_seconds,
    )


def _missing_model_packages(llm: LlmSettings) -> list[str]:
    """What to install for the configured models' providers (none offline: no model is built)."""
    if llm.api_key is None:
        return []
    from parley.adapters.outbound.langgraph.providers import missing_packages, parse_model_spec

    named = [("LLM_MODEL", llm.model), *(("LLM_FALLBACK_MODELS", text) for text in llm.fallback_models)]
    return [
        f"{variable} names {text!r}: {need}"
        for variable, text in named
        if (need := missing_packages(parse_model_spec(text)))
    ]


def _side_model(llm: LlmSettings) -> ModelConfig:
    """The chat model as the small background calls (titles, facts) use it: no fallbacks, and
    the builders set their own reply bound and temperature."""
    from parley.adapters.outbound.langgraph import ModelConfig

    return ModelConfig(
        name=llm.model,
        api_key=_secret(llm.api_key),
        base_url=llm.base_url,
        request_timeout=llm.request_timeout_seconds,
    )


def _title_writer(llm: LlmSettings) -> ModelTitleWriter | OfflineTitleWriter:
    """Names chats: the chat model (a small non-streamed call), or offline the first words of the
    message. Imported when built at start-up, as the agent is."""
    from parley.adapters.outbound.langgraph.titles import build_title_writer

    return build_title_writer(_side_model(llm))


def _fact_extractor(llm: LlmSettings) -> ModelFactExtractor | OfflineFactExtractor:
    """Finds the facts a user stated: the chat model (a small non-streamed call), or offline by
    patterns. Imported when built at start-up, as the agent is."""
    from parley.adapters.outbound.langgraph.facts import build_fact_extractor

    return build_fact_extractor(_side_model(llm))


def _memory_embeddings(llm: LlmSettings, memory: MemorySettings) -> MemoryEmbeddings | None:
    """Semantic recall with ``MEMORY_EMBEDDING_MODEL`` at the chat model's OpenAI-compatible server;
    None (full-text search) without it."""
    if memory.embedding_model is None:
        return None
    if llm.api_key is None:
        raise ConfigurationError("MEMORY_EMBEDDING_MODEL needs LLM_API_KEY (and LLM_BASE_URL if not OpenAI)")
    from parley.adapters.outbound.langgraph.memory_store import openai_embeddings

    return openai_embeddings(
        memory.embedding_model,
        dims=memory.embedding_dims,
        api_key=llm.api_key.get_secret_value(),
        base_url=llm.base_url,
        timeout=llm.request_timeout_seconds,
    )


# The memory store's own pool: one short query per turn (recall), rare writes.
MEMORY_POOL_SIZE = 4


def _memory_store(
    llm: LlmSettings, memory: MemorySettings, db: DatabaseSettings, postgres_url: str | None
) -> PostgresMemoryStore:
    """Users' facts in LangGraph's Postgres store (imported at start-up, as the agent is)."""
    from parley.adapters.outbound.langgraph.checkpoints import libpq_url
    from parley.adapters.outbound.langgraph.memory_store import PostgresMemoryStore

    if postgres_url is None:
        raise ConfigurationError("the memory store needs a database URL")
    return PostgresMemoryStore(
        libpq_url(postgres_url),
        embeddings=_memory_embeddings(llm, memory),
        pool_size=min(db.pool_size, MEMORY_POOL_SIZE),
        pool_timeout=min(db.pool_timeout, 5.0),
    )


def _turn_memory(memory: MemorySettings, user_memory: UserMemory) -> UserMemory | None:
    """What turns recall and learn with: None when ``MEMORY_ENABLED`` is off."""
    return user_memory if memory.enabled else None


def _tracer(observability: ObservabilitySettings, environment: str) -> LangfuseTracer | NoopTracer:
    """Langfuse when its keys are set (its SDK is imported only then), else the no-op tracer."""
    if not observability.langfuse_enabled:
        from parley.adapters.outbound.langfuse import NoopTracer

        return NoopTracer()
    from parley.adapters.outbound.langfuse import LangfuseTracer

    return LangfuseTracer(
        public_key=_secret(observability.langfuse_public_key) or "",
        secret_key=_secret(observability.langfuse_secret_key) or "",
        host=observability.langfuse_host,
        environment=environment,
    )


# The Langfuse environment of the turns `parley eval` traces: shaped like production turns,
# but kept out of production's dashboards, and out of what `parley eval traces` judges.
EVALUATION_ENVIRONMENT = "evaluation"
# Seconds per request to Langfuse's public API (scores, trace lists).
LANGFUSE_API_TIMEOUT = 10.0


def _langfuse_keys(observability: ObservabilitySettings) -> tuple[str, str, str] | None:
    if not observability.langfuse_enabled:
        return None
    return (
        _secret(observability.langfuse_public_key) or "",
        _secret(observability.langfuse_secret_key) or "",
        observability.langfuse_host,
    )


def _score_sink(observability: ObservabilitySettings) -> LangfuseScoreSink | None:
    """``parley eval``'s scores go to Langfuse when its keys are set; None: nowhere."""
    keys = _langfuse_keys(observability)
    if keys is None:
        return None
    from parley.adapters.outbound.langfuse import LangfuseScoreSink

    return LangfuseScoreSink(*keys, timeout=LANGFUSE_API_TIMEOUT)


def _trace_source(observability: ObservabilitySettings) -> LangfuseTraceSource | None:
    """``parley eval traces`` reads production turns from Langfuse; None without its keys."""
    keys = _langfuse_keys(observability)
    if keys is None:
        return None
    from parley.adapters.outbound.langfuse import LangfuseTraceSource

    return LangfuseTraceSource(*keys, timeout=LANGFUSE_API_TIMEOUT, skip_environment=EVALUATION_ENVIRONMENT)


def _judge(evaluation: EvaluationSettings) -> OpenAIJudge | HeuristicJudge:
    """``parley eval``'s judge: an LLM on any OpenAI-compatible server when EVALUATION_API_KEY is
    set (the openai SDK is imported only then), else the offline heuristic judge (not an LLM)."""
    if evaluation.api_key is None:
        from parley.adapters.outbound.judge import HeuristicJudge

        return HeuristicJudge()
    from parley.adapters.outbound.judge.openai_judge import OpenAIJudge

    return OpenAIJudge(
        model=evaluation.judge_model,
        api_key=evaluation.api_key.get_secret_value(),
        base_url=evaluation.base_url,
        attempts=evaluation.retries + 1,
        request_timeout=evaluation.timeout_seconds,
    )


def _turn_policy(settings: Settings) -> TurnPolicy:
    # The claim must outlive the longest possible turn, or a slow turn could be overtaken.
    return TurnPolicy(
        max_message_chars=settings.max_message_chars,
        claim_ttl=timedelta(seconds=settings.llm.timeout_seconds + 60),
        approval_ttl=timedelta(seconds=settings.approval_timeout_seconds),
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    database_url: providers.Object[str | None] = providers.Object(None)  # set by running_resources

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid4Generator)

    engine = providers.Singleton(
        create_engine,
        database_url,
        pool_size=settings.provided.db.pool_size,
        max_overflow=settings.provided.db.max_overflow,
        pool_timeout=settings.provided.db.pool_timeout,
    )
    uow_factory = providers.Singleton(postgres_unit_of_work_factory, engine)
    reply_slots = providers.Singleton(PostgresReplySlots, engine)
    database_probe = providers.Singleton(PostgresDatabaseProbe, engine)

    hasher = providers.Singleton(
        PasslibBcryptHasher,
        rounds=settings.provided.auth.bcrypt_rounds,
        max_workers=settings.provided.auth.bcrypt_workers,
    )
    token_issuer = providers.Singleton(
        PyJwtTokenIssuer,
        secret=providers.Callable(_secret, settings.provided.auth.jwt_secret_key),
        access_ttl=providers.Callable(lambda s: timedelta(hours=s.access_token_hours), settings),
        refresh_ttl=providers.Callable(
            lambda s: timedelta(days=s.auth.jwt_refresh_token_expire_days), settings
        ),
        algorithm=settings.provided.auth.jwt_algorithm,
        clock=clock,
    )
    agent = providers.Singleton(_chat_agent, settings.provided.llm, settings.provided.db, database_url)
    # `parley eval`: the same agent, remembering its (throw-away) conversations in memory, and a judge.
    evaluation_agent = providers.Singleton(
        _chat_agent, settings.provided.llm, settings.provided.db, None, in_memory=True
    )
    judge = providers.Singleton(_judge, settings.provided.evaluation)
    # With Langfuse keys: evaluated turns traced (environment "evaluation"), scores sent, and
    # production turns read back (`parley eval traces`); without, None / the no-op tracer.
    evaluation_tracer = providers.Singleton(_tracer, settings.provided.observability, EVALUATION_ENVIRONMENT)
    score_sink = providers.Singleton(_score_sink, settings.provided.observability)
    trace_source = providers.Singleton(_trace_source, settings.provided.observability)
    tracer = providers.Singleton(_tracer, settings.provided.observability, settings.provided.app_env.value)
    # One registry per app (not the process-wide one), so test apps never share metrics;
    # /metrics renders it. Turns report to the metrics and to Langfuse (or the no-op).
    metrics_registry = providers.Singleton(CollectorRegistry)
    prometheus_tracer = providers.Singleton(PrometheusTracer, registry=metrics_registry)
    turn_tracer = providers.Singleton(CompositeTracer, providers.List(prometheus_tracer, tracer))

    # Where the HTTP edge's rate limits count: Redis when REDIS_URL is set, else memory.
    rate_limit_storage = providers.Singleton(
        make_rate_limit_storage, providers.Callable(_secret, settings.provided.limits.redis_url)
    )

    # Auth sessions read in the last second: the token check of a burst costs one read per login.
    recent_auth_sessions = providers.Singleton(
        RecentAuthSessions, ttl=settings.provided.auth.session_cache_seconds
    )

    register_user = providers.Factory(RegisterUser, uow_factory, hasher, clock, ids)
    log_in = providers.Factory(LogIn, uow_factory, hasher, token_issuer, clock, ids)
    refresh_tokens = providers.Factory(
        RefreshTokens, uow_factory, token_issuer, clock, ids, sessions=recent_auth_sessions
    )
    authenticate = providers.Factory(Authenticate, uow_factory, token_issuer, clock, recent_auth_sessions)
    log_out = providers.Factory(LogOut, uow_factory, token_issuer, clock, recent_auth_sessions)

    get_profile = providers.Factory(GetProfile, uow_factory)
    change_email = providers.Factory(ChangeEmail, uow_factory, hasher, clock)
    change_password = providers.Factory(
        ChangePassword, uow_factory, hasher, clock, sessions=recent_auth_sessions
    )
    # The turns running in this process (delete and clear stop them first), and the writes
    # waiting for the database to come back.
    running_turns = providers.Singleton(RunningTurns)
    deferred_writes = providers.Singleton(DeferredWrites)
    # Chats still named "New chat" get a title after their first exchange (CHAT_AUTO_TITLE).
    title_writer = providers.Singleton(_title_writer, settings.provided.llm)
    chat_titles = providers.Singleton(
        ChatTitles, title_writer, uow_factory, clock, enabled=settings.provided.chat_auto_title
    )

    # Long-term memory per user: facts learnt after turns (in the background), recalled in later ones.
    memory_store = providers.Singleton(
        _memory_store, settings.provided.llm, settings.provided.memory, settings.provided.db, database_url
    )
    fact_extractor = providers.Singleton(_fact_extractor, settings.provided.llm)
    user_memory = providers.Singleton(
        UserMemory,
        memory_store,
        fact_extractor,
        recall_limit=settings.provided.memory.recall_limit,
        delay=settings.provided.memory.learn_delay_seconds,
    )
    list_memories = providers.Factory(ListMemories, memory_store)
    forget_memory = providers.Factory(ForgetMemory, memory_store)
    forget_all_memories = providers.Factory(ForgetAllMemories, user_memory)

    delete_account = providers.Factory(
        DeleteAccount, uow_factory, agent, running_turns, sessions=recent_auth_sessions, memory=user_memory
    )

    create_conversation = providers.Factory(CreateConversation, uow_factory, clock, ids)
    list_conversations = providers.Factory(ListConversations, uow_factory)
    get_conversation = providers.Factory(GetConversation, uow_factory)
    rename_conversation = providers.Factory(RenameConversation, uow_factory, clock)
    delete_conversation = providers.Factory(DeleteConversation, uow_factory, agent, running_turns)
    list_messages = providers.Factory(ListMessages, uow_factory)
    clear_messages = providers.Factory(ClearMessages, uow_factory, agent, clock, running_turns)
    turn_services = providers.Singleton(
        TurnServices,
        reply_slots,
        agent,
        turn_tracer,
        clock,
        ids,
        providers.Callable(_turn_policy, settings),
        running_turns,
        deferred_writes,
        chat_titles,
        providers.Callable(_turn_memory, settings.provided.memory, user_memory),
    )
    send_message = providers.Factory(SendMessage, turn_services)
    stream_reply = providers.Factory(StreamReply, turn_services)
    get_pending_approval = providers.Factory(GetPendingApproval, reply_slots, clock)
    decide_approval = providers.Factory(DecideApproval, turn_services)
    stream_decision = providers.Factory(StreamDecision, turn_services)
