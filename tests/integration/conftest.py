"""Integration fixtures: for the PostgreSQL adapter, one fresh, migrated database per module;
for the shared rate-limit storage, a Redis server (``redis_url``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.adapters.outbound.postgres.engine import create_engine
from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.adapters.outbound.postgres.reply_slots import PostgresReplySlots
from parley.adapters.outbound.postgres.unit_of_work import postgres_unit_of_work_factory
from parley.ports.persistence import ReplySlots, UnitOfWorkFactory


@pytest.fixture(scope="module")
def migrated_database_url(create_database: Callable[[], str]) -> str:
    """A libpq URL of a database of this module's own, at the newest revision."""
    url = create_database()
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="module")
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_database_url, pool_size=5, max_overflow=5, pool_timeout=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def uow_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    return postgres_unit_of_work_factory(engine)


@pytest.fixture(scope="module")
def reply_slots(engine: AsyncEngine) -> ReplySlots:
    return PostgresReplySlots(engine)


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers' dependency

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL: ``PARLEY_TEST_REDIS_URL``, else a testcontainers Redis when a Docker daemon
    answers, else a skip that says so. Each test keeps its keys under its own prefix."""
    explicit = os.environ.get("PARLEY_TEST_REDIS_URL")
    if explicit:
        yield explicit
        return
    if not _docker_answers():
        pytest.skip("no Redis: set PARLEY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15) or start Docker")
    from testcontainers.community.redis import RedisContainer

    with RedisContainer("redis:7-alpine") as container:
        yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
