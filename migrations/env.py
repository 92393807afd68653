"""Alembic environment: async psycopg engine, URL from the caller, one advisory lock.

Where the database URL comes from (first found wins):
1. ``config.attributes["url"]`` (set by ``parley.adapters.outbound.postgres.migrate``);
2. ``alembic -x url=postgresql://...``;
3. the ``sqlalchemy.url`` main option (alembic.ini or ``Config.set_main_option``);
4. the ``DATABASE_URL`` or ``POSTGRES_URL`` environment variable.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from parley.adapters.outbound.postgres.engine import to_async_url
from parley.adapters.outbound.postgres.tables import metadata

# Several instances may start at once and all try to migrate: the first one holds
# this transaction-scoped lock, the others wait and then find nothing left to do.
MIGRATION_LOCK_KEY = 7_346_571_233

config = context.config
target_metadata = metadata

# Only the alembic command line configures logging; an application calling us keeps its own.
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    candidates = [
        config.attributes.get("url"),
        context.get_x_argument(as_dictionary=True).get("url"),
        config.get_main_option("sqlalchemy.url"),
        os.environ.get("DATABASE_URL"),
        os.environ.get("POSTGRES_URL"),
    ]
    url = next((candidate for candidate in candidates if candidate), None)
    if url is None:
        raise RuntimeError("No database URL: pass -x url=..., or set DATABASE_URL or POSTGRES_URL")
    return str(url)


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=to_async_url(database_url()).set(drivername="postgresql"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(to_async_url(database_url()), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
