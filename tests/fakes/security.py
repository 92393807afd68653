"""A fast double of the ``PasswordHasher`` port.

For the ``TokenIssuer`` port use the real ``PyJwtTokenIssuer``: it is pure and fast; give it the
test's ``FakeClock`` (``clock=...``) so expiry follows the fake time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

_SCHEME = "fake-sha256"
_DUMMY_HASH = f"{_SCHEME}$0${'0' * 64}"


class FakePasswordHasher:
    """Salted SHA-256 instead of bcrypt: microseconds instead of ~250 ms, same contract.

    - hashes look like ``fake-sha256$<salt>$<hex digest>`` and never contain the password;
    - each ``hash`` uses a new salt, so the same password hashes differently every time;
    - SHA-256 reads every byte, so passwords differing after byte 72 do not both verify;
    - ``verify(pw, None)`` still runs a comparison (against a dummy hash) and returns False;
    - a malformed hash verifies as False.

    ``verifications`` counts ``verify`` calls (None included), so a test can show that a
    log-in for an unknown account still pays for a password check.
    """

    def __init__(self) -> None:
        self._salts = 0
        self.verifications = 0

    async def hash(self, password: str) -> str:
        await asyncio.sleep(0)  # a real hasher yields to the loop; so does this one
        self._salts += 1
        salt = str(self._salts)
        return f"{_SCHEME}${salt}${_digest(salt, password)}"

    async def verify(self, password: str, password_hash: str | None) -> bool:
        await asyncio.sleep(0)
        self.verifications += 1
        matched = _check(password, password_hash or _DUMMY_HASH)
        return matched and password_hash is not None


def _digest(salt: str, password: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def _check(password: str, password_hash: str) -> bool:
    scheme, _, rest = password_hash.partition("$")
    salt, _, digest = rest.partition("$")
    if scheme != _SCHEME or not salt or not digest:
        return False
    return hmac.compare_digest(_digest(salt, password), digest)
