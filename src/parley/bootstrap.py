"""Bringing the container's resources up and down: the database (embedded in development),
migrations, the start/stop of the adapters that hold connections or threads, and the two
database checks of the command line. The container itself only declares providers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from dependency_injector import providers
from loguru import logger
from sqlalchemy.pool import QueuePool

from parley.adapters.inbound.http.metrics_endpoint import DatabaseCheck, PoolReader, PoolUsage
from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres
from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.adapters.outbound.postgres.probe import ensure_reachable, wait_until_reachable
from parley.config import ConfigurationError, Settings
from parley.container import Container
from parley.ports.persistence import StorageUnavailable

if TYPE_CHECKING:
    from parley.adapters.inbound.evaluation.command import EvaluationParts


async def _database_url(settings: Settings, stack: AsyncExitStack) -> tuple[str, bool]:
    """The database to use, and whether it is the embedded one (started here if so)."""
    if settings.db.url is not None:
        return settings.db.url.get_secret_value(), False
    if not settings.is_development:  # settings validation already refuses this; belt and braces
        raise ConfigurationError("POSTGRES_URL (or DATABASE_URL) is required outside development")
    embedded = EmbeddedPostgres(settings.data_dir / "postgres")
    url = await asyncio.to_thread(embedded.start)
    stack.push_async_callback(asyncio.to_thread, embedded.stop)
    logger.info("Using the embedded PostgreSQL under {}", settings.data_dir / "postgres")
    return url, True


async def _start_and_register(stack: AsyncExitStack, resource: object) -> None:
    """Start ``resource`` if it has ``start()``; schedule its ``aclose()`` for shutdown."""
    start = getattr(resource, "start", None)
    if start is not None:
        await start()
    aclose = getattr(resource, "aclose", None)
    if aclose is not None:
        stack.push_async_callback(aclose)


@asynccontextmanager
async def running_resources(container: Container) -> AsyncIterator[None]:
    """Open the database (embedded in development when no URL is set), migrate when due,
    start the agent; on exit close everything in reverse order."""
    settings: Settings = container.settings()
    async with AsyncExitStack() as stack:
        url, embedded = await _database_url(settings, stack)
        await ensure_reachable(url)
        container.database_url.override(providers.Object(url))
        migrate = settings.db.migrate_on_start if settings.db.migrate_on_start is not None else embedded
        if migrate:
            await asyncio.to_thread(upgrade_to_head, url)
        stack.push_async_callback(_dispose_engine, container)
        resources = (
            container.hasher(),
            container.turn_tracer(),
            container.agent(),
            container.memory_store(),
            container.database_probe(),
        )
        # Closed in reverse: pending memory jobs and chat titles are cancelled first, then their
        # model clients.
        for resource in (
            *resources,
            container.title_writer(),
            container.fact_extractor(),
            container.deferred_writes(),
            container.chat_titles(),
            container.user_memory(),
        ):
            await _start_and_register(stack, resource)
        yield


@asynccontextmanager
async def running_evaluation(container: Container) -> AsyncIterator[EvaluationParts]:
    """``parley eval``: start the evaluation agent (the app's agent and model, with its memory
    in this process: no database) and the judge; close both on exit."""
    # Imported here: the app (create_app) never needs the evaluation adapter or rich.
    from parley.adapters.inbound.evaluation.command import EvaluationParts
    from parley.adapters.inbound.evaluation.reports import ModelInfo
    from parley.application.evaluation.runner import TurnTracing

    settings: Settings = container.settings()
    async with AsyncExitStack() as stack:
        agent = container.evaluation_agent()
        judge = container.judge()
        stack.push_async_callback(judge.aclose)
        await _start_and_register(stack, agent)
        scores, traces, tracing = container.score_sink(), container.trace_source(), None
        for resource in (scores, traces):
            if resource is not None:
                stack.push_async_callback(resource.aclose)
        if settings.observability.langfuse_enabled:
            tracer = container.evaluation_tracer()
            stack.push_async_callback(tracer.aclose)  # flushes the cases' traces on the way out
            tracing = TurnTracing(tracer, container.clock())
        yield EvaluationParts(
            agent=agent,
            agent_model=ModelInfo(agent.model_name, is_llm=settings.llm.api_key is not None),
            judge=judge,
            tracing=tracing,
            scores=scores,
            traces=traces,
        )


async def _dispose_engine(container: Container) -> None:
    await container.engine().dispose()


async def migrate_database(settings: Settings, *, wait_seconds: float = 0) -> None:
    """``parley migrate``: bring the configured (or embedded) database to the newest schema.

    ``wait_seconds`` > 0 (the image's prestart step): wait that long for the database to
    answer before giving up with :class:`StorageUnavailable`; 0 tries once. Safe to run
    twice, or from several replicas at once: the upgrade holds a PostgreSQL advisory lock
    (``migrations/env.py``), so one process migrates while the others wait, then find the
    schema at the newest revision and do nothing.
    """
    async with AsyncExitStack() as stack:
        url, _ = await _database_url(settings, stack)
        await wait_until_reachable(url, within=wait_seconds)
        await asyncio.to_thread(upgrade_to_head, url)


async def check_database(settings: Settings) -> None:
    """``parley serve``'s first step: a configured database that cannot be reached stops the
    command with one clear line (:class:`StorageUnavailable`), before any worker starts."""
    if settings.db.url is not None:
        await ensure_reachable(settings.db.url.get_secret_value())


def database_pool_reader(container: Container) -> PoolReader:
    """Reads the engine's pool when ``/metrics`` is scraped (the engine exists once started)."""

    def read() -> PoolUsage | None:
        pool = container.engine().pool
        if not isinstance(pool, QueuePool):
            return None
        # overflow() counts up from -size while the pool fills: report only the excess.
        return PoolUsage(
            size=pool.size(),
            checked_out=pool.checkedout(),
            idle=pool.checkedin(),
            overflow=max(0, pool.overflow()),
            max_overflow=container.settings().db.max_overflow,
        )

    return read


def database_check(container: Container) -> DatabaseCheck:
    """Asks the ``/health`` probe (its own connection, bounded in time) when ``/metrics`` is scraped."""

    async def check() -> bool:
        try:
            await container.database_probe().ping()
        except StorageUnavailable:
            return False
        return True

    return check
