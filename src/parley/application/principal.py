"""Who is calling: the outcome of authenticating an access token."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the user and the login (auth session) the token belongs to."""

    user_id: UUID
    session_id: UUID
