"""Users and the value objects that guard their credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parley.domain.errors import FieldProblem, ValidationFailed

_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True, slots=True)
class Email:
    """A normalised e-mail address.

    Rules:
    - surrounding whitespace is trimmed;
    - addresses compare case-insensitively, so the stored form is lower case;
    - one ``@``, a dotted domain, no whitespace, at most 254 characters.
    """

    value: str

    @classmethod
    def parse(cls, raw: str, *, field: str = "email") -> Email:
        normalised = raw.strip().lower()
        if len(normalised) > MAX_EMAIL_LENGTH or not _EMAIL_PATTERN.match(normalised):
            raise ValidationFailed.single(field, "Enter a valid email address")
        return cls(normalised)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Rules a new password must satisfy; every broken rule is reported separately."""

    min_length: int = 8
    max_length: int = 128

    def problems(self, password: str, *, field: str = "password") -> list[FieldProblem]:
        checks = [
            (
                len(password) >= self.min_length,
                f"Password must be at least {self.min_length} characters long",
            ),
            (len(password) <= self.max_length, f"Password must be at most {self.max_length} characters long"),
            (any(c.isupper() for c in password), "Password must contain at least one uppercase letter"),
            (any(c.islower() for c in password), "Password must contain at least one lowercase letter"),
            (any(c.isdigit() for c in password), "Password must contain at least one number"),
            (
                any(not c.isalnum() and not c.isspace() for c in password),
                "Password must contain at least one special character",
            ),
        ]
        return [FieldProblem(field, message) for ok, message in checks if not ok]

    def check(self, password: str, *, field: str = "password") -> None:
        """Raise :class:`ValidationFailed` listing each broken rule."""
        problems = self.problems(password, field=field)
        if problems:
            raise ValidationFailed(problems)


@dataclass(slots=True, kw_only=True)
class User:
    """A registered account. ``password_hash`` never leaves the core's adapters."""

    id: UUID
    email: Email
    password_hash: str
    created_at: datetime
    updated_at: datetime
