"""Keyset paging: a list position as an opaque cursor string.

Lists ordered by a moment and an id (newest first, ties by id) page by keyset; the position of the
last item shown travels as an opaque URL-safe string, so clients cannot depend on its shape.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from parley.domain.errors import ValidationFailed


def encode_position(moment: datetime, key: UUID) -> str:
    raw = f"{moment.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(token: str, *, field: str = "cursor") -> tuple[datetime, UUID]:
    """The position :func:`encode_position` wrote; a forged or damaged token (or one with a naive
    timestamp) is a validation error on ``field``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        stamp, ident = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, UUID(ident)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed.single(field, "Invalid cursor") from None
