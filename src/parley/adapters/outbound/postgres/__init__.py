"""PostgreSQL persistence: tables, engine factories, repositories, the unit of work, the reply
slots, migrations, the readiness probe, and the embedded server behind the zero-configuration
default."""

from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres
from parley.adapters.outbound.postgres.engine import create_engine, to_async_url
from parley.adapters.outbound.postgres.migrate import downgrade, upgrade_to_head, upgrade_to_head_async
from parley.adapters.outbound.postgres.probe import PostgresDatabaseProbe
from parley.adapters.outbound.postgres.reply_slots import PostgresReplySlots
from parley.adapters.outbound.postgres.unit_of_work import PostgresUnitOfWork, postgres_unit_of_work_factory

__all__ = [
    "EmbeddedPostgres",
    "PostgresDatabaseProbe",
    "PostgresReplySlots",
    "PostgresUnitOfWork",
    "create_engine",
    "downgrade",
    "postgres_unit_of_work_factory",
    "to_async_url",
    "upgrade_to_head",
    "upgrade_to_head_async",
]
