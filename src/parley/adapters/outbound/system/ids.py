"""The random identifier source behind the ``IdGenerator`` port."""

from __future__ import annotations

from uuid import UUID, uuid4


class Uuid4Generator:
    """Random version-4 UUIDs (122 random bits from ``os.urandom``): collisions are not a concern."""

    def new_id(self) -> UUID:
        return uuid4()
