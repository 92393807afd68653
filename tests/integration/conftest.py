"""Integration fixtures for the PostgreSQL adapter: one fresh, migrated database per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.adapters.outbound.postgres.engine import create_engine, create_sessionmaker
from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.adapters.outbound.postgres.unit_of_work import postgres_unit_of_work_factory
from parley.ports.persistence import UnitOfWorkFactory


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
    return postgres_unit_of_work_factory(create_sessionmaker(engine))
