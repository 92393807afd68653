"""Run the Alembic migrations programmatically (``parley migrate``, app start-up, tests).

The functions are synchronous because Alembic's ``env.py`` runs its own event loop.
They may still be called from a thread whose event loop is running (a sync pytest
fixture under pytest-asyncio, a blocking start-up hook): Alembic then runs in a worker
thread while the caller waits. Async code should prefer :func:`upgrade_to_head_async`,
which does not block the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


def find_migrations(module_file: Path = Path(__file__)) -> Path:
    """Where the Alembic scripts are, for this module at ``module_file``.

    - an installed wheel (the image) carries them as package data, ``parley/migrations``
      (pyproject's ``force-include``), beside ``parley/adapters``;
    - a source checkout (editable install, tests) has them at the repository root,
      ``<root>/migrations``, beside ``src/parley``.

    The packaged copy wins, so an installed Parley never depends on the directory it runs
    in. When neither exists the packaged path is returned, and :func:`alembic_config` says
    it is missing.
    """
    package = module_file.resolve().parents[3]  # .../parley/adapters/outbound/postgres/migrate.py
    packaged = package / "migrations"
    if (packaged / "env.py").is_file():
        return packaged
    checkout = package.parents[1] / "migrations"  # <root>/src/parley -> <root>/migrations
    return checkout if (checkout / "env.py").is_file() else packaged


MIGRATIONS_DIR = find_migrations()


def alembic_config(url: str, *, script_location: Path = MIGRATIONS_DIR) -> Config:
    """An Alembic config without an ini file (so the host application's logging stays untouched)."""
    if not (script_location / "env.py").is_file():
        raise FileNotFoundError(f"Alembic migrations not found at {script_location}")
    config = Config()
    config.set_main_option("script_location", str(script_location))
    # Passed as an attribute, not a main option: ini interpolation would mangle '%' in passwords.
    config.attributes["url"] = url
    return config


def _run_outside_event_loop(action: Callable[[], None]) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        action()
        return
    # env.py calls asyncio.run(), which refuses to nest in a running loop: give it a thread.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="alembic") as pool:
        pool.submit(action).result()


def upgrade_to_head(url: str) -> None:
    """Bring the database at ``url`` (any ``postgresql://`` form) to the newest revision."""
    _run_outside_event_loop(lambda: command.upgrade(alembic_config(url), "head"))


async def upgrade_to_head_async(url: str) -> None:
    """:func:`upgrade_to_head` for callers already inside an event loop."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


def downgrade(url: str, revision: str) -> None:
    """Step the database back to ``revision`` (``"base"`` removes every table)."""
    _run_outside_event_loop(lambda: command.downgrade(alembic_config(url), revision))


def head_revision() -> str | None:
    """The newest revision id the code knows about."""
    return ScriptDirectory.from_config(alembic_config("unused")).get_current_head()
