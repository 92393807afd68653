"""The one place where driver failures become domain or port errors.

- an :class:`~sqlalchemy.exc.IntegrityError` is translated by the name of the
  constraint it broke (``uq_users_email`` → :class:`EmailAlreadyRegistered`);
  unknown constraints stay as they are: they are bugs, not business outcomes;
- anything meaning "the database cannot be reached or went away" (refused or
  lost connections, socket errors, an invalidated connection) becomes
  :class:`StorageUnavailable`, so the edge can answer 503; an exhausted pool (no
  connection came free within ``pool_timeout``) becomes :class:`StorageBusy`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import exc as sa_exc

from parley.domain.errors import DomainError, EmailAlreadyRegistered
from parley.ports.persistence import StorageBusy, StorageUnavailable

from .tables import EMAIL_UNIQUE_CONSTRAINT

_CONSTRAINT_ERRORS: dict[str, type[DomainError]] = {
    EMAIL_UNIQUE_CONSTRAINT: EmailAlreadyRegistered,
}

_UNAVAILABLE = (
    sa_exc.OperationalError,  # wraps psycopg.OperationalError: refused, reset, server shut down
    sa_exc.InterfaceError,  # the connection is closed / unusable
    psycopg.OperationalError,
    psycopg.InterfaceError,
    OSError,  # includes TimeoutError (asyncio's too, since 3.11)
)


def constraint_name(error: sa_exc.IntegrityError) -> str | None:
    """The name of the constraint a driver-level integrity error reports, if any."""
    diagnostic = getattr(error.orig, "diag", None)
    name = getattr(diagnostic, "constraint_name", None)
    return name if isinstance(name, str) else None


def translate(error: BaseException) -> BaseException | None:
    """The port/domain error ``error`` stands for, or None when it has no translation."""
    if isinstance(error, sa_exc.IntegrityError):
        domain_error = _CONSTRAINT_ERRORS.get(constraint_name(error) or "")
        return domain_error() if domain_error is not None else None
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection to lend in time
        return StorageBusy("every database connection stayed in use")
    if isinstance(error, _UNAVAILABLE):
        return StorageUnavailable(f"database unavailable: {type(error).__name__}")
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return StorageUnavailable("database connection lost")
    return None


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise driver failures inside the block as their port/domain equivalent."""
    try:
        yield
    except (sa_exc.SQLAlchemyError, psycopg.Error, OSError) as error:
        replacement = translate(error)
        if replacement is None:
            raise
        raise replacement from error
