"""Users and the value objects that guard their credentials."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parley.domain.errors import FieldProblem, ValidationFailed

_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
# Unicode general categories an address may not contain: controls (Cc: NUL, ESC, DEL, ...),
# format characters (Cf: zero-width space and joiners, soft hyphen, bidi overrides such as
# U+202E), surrogates (Cs), private use (Co), unassigned (Cn), and separators (Zs, Zl, Zp;
# the ASCII space is refused by the address pattern, or trimmed at either end).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def normalise_email(raw: str) -> str:
    """The one spelling of an address, valid or not (``Email.parse`` then checks it).

    NFKC (full-width and other compatibility forms become their plain letters), trimmed,
    lower-cased, and NFKC again, so the result is a fixed point: normalising a normalised
    address gives it back. Lower-casing, not ``casefold()``: stored addresses were lower-cased,
    and ``casefold()`` would change some of them (``ß`` becomes ``ss``).
    """
    folded = unicodedata.normalize("NFKC", raw).strip().lower()
    return unicodedata.normalize("NFKC", folded)


def _has_invisible_character(text: str) -> bool:
    return any(unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text if char != " ")


@dataclass(frozen=True, slots=True)
class Email:
    """A normalised e-mail address: one address, one spelling, so look-alikes cannot
    become a second account.

    Rules:
    - normalised with NFKC (a full-width letter such as U+FF41 becomes its ASCII ``a``),
      trimmed, then lower-cased (addresses compare case-insensitively);
    - no control, format or invisible characters (NUL, ESC, DEL, zero-width space, soft
      hyphen, bidi overrides, private-use or unassigned code points, non-ASCII spaces);
    - one ``@``, a dotted domain, no whitespace, at most 254 characters once normalised.
    """

    value: str

    @classmethod
    def parse(cls, raw: str, *, field: str = "email") -> Email:
        normalised = normalise_email(raw)
        if len(normalised) > MAX_EMAIL_LENGTH:
            raise ValidationFailed.single(field, f"Email must be at most {MAX_EMAIL_LENGTH} characters long")
        if _has_invisible_character(normalised):
            raise ValidationFailed.single(field, "Email must not contain control or invisible characters")
        if not _EMAIL_PATTERN.match(normalised):
            raise ValidationFailed.single(field, "Enter a valid email address")
        return cls(normalised)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Rules a new password must satisfy; every broken rule is reported separately."""

    min_length: int = MIN_PASSWORD_LENGTH
    max_length: int = MAX_PASSWORD_LENGTH

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
