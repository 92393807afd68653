"""PostgreSQL persistence: tables, engine factories, repositories, the unit of work, migrations,
the readiness probe, and the embedded server behind the zero-configuration default."""

from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres
from parley.adapters.outbound.postgres.engine import create_engine, create_sessionmaker, to_async_url
from parley.adapters.outbound.postgres.migrate import downgrade, upgrade_to_head, upgrade_to_head_async
from parley.adapters.outbound.postgres.probe import PostgresDatabaseProbe
from parley.adapters.outbound.postgres.unit_of_work import PostgresUnitOfWork, postgres_unit_of_work_factory

__all__ = [
    "EmbeddedPostgres",
    "PostgresDatabaseProbe",
    "PostgresUnitOfWork",
    "create_engine",
    "create_sessionmaker",
    "downgrade",
    "postgres_unit_of_work_factory",
    "to_async_url",
    "upgrade_to_head",
    "upgrade_to_head_async",
]
