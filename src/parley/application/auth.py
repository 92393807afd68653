"""Authentication use cases: register, log in, refresh, log out, and check an access token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from parley.application.principal import Principal
from parley.application.session_cache import RecentAuthSessions
from parley.application.tokens import mint_token_pair
from parley.domain.auth import AuthSession, TokenClaims, TokenPair, TokenType
from parley.domain.errors import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    NotAuthenticated,
    RefreshTokenReused,
    ValidationFailed,
)
from parley.domain.users import Email, PasswordPolicy, User
from parley.ports.auth import InvalidToken, PasswordHasher, TokenIssuer
from parley.ports.persistence import AuthSessionRepository, UnitOfWorkFactory
from parley.ports.system import Clock, IdGenerator


@dataclass(frozen=True, slots=True)
class RegisterInput:
    email: str
    password: str


class RegisterUser:
    """Create an account.

    - the e-mail is trimmed and lower-cased; it must be unique (``EmailAlreadyRegistered``);
    - the password must satisfy the :class:`PasswordPolicy`; every broken rule of both
      fields is reported together (``ValidationFailed``);
    - the password is hashed before the transaction opens (no connection held during bcrypt).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        ids: IdGenerator,
        policy: PasswordPolicy | None = None,
    ) -> None:
        self._uow, self._hasher, self._clock, self._ids = uow, hasher, clock, ids
        self._policy = policy or PasswordPolicy()

    async def execute(self, data: RegisterInput) -> User:
        email = self._parse(data)
        async with self._uow() as uow:
            if await uow.users.get_by_email(email) is not None:
                raise EmailAlreadyRegistered()
        password_hash = await self._hasher.hash(data.password)
        now = self._clock.now()
        user = User(
            id=self._ids.new_id(), email=email, password_hash=password_hash, created_at=now, updated_at=now
        )
        async with self._uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    def _parse(self, data: RegisterInput) -> Email:
        problems = list(self._policy.problems(data.password))
        try:
            email = Email.parse(data.email)
        except ValidationFailed as invalid:
            raise ValidationFailed([*invalid.problems, *problems]) from None
        if problems:
            raise ValidationFailed(problems)
        return email


@dataclass(frozen=True, slots=True)
class LogInInput:
    email: str
    password: str


class LogIn:
    """Exchange e-mail and password for a token pair, opening a new auth session.

    - an unknown e-mail and a wrong password fail identically (``InvalidCredentials``),
      and cost the same: the hasher checks against a dummy hash when no user matches;
    - the password check runs between two short transactions, never inside one.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._uow, self._hasher, self._issuer, self._clock, self._ids = uow, hasher, issuer, clock, ids

    async def execute(self, data: LogInInput) -> tuple[User, TokenPair]:
        user = await self._find_user(data.email)
        verified = await self._hasher.verify(data.password, user.password_hash if user else None)
        if user is None or not verified:
            raise InvalidCredentials()
        now = self._clock.now()
        auth_session = AuthSession(
            id=self._ids.new_id(),
            user_id=user.id,
            refresh_token_id=self._ids.new_id(),
            created_at=now,
            expires_at=now + self._issuer.refresh_ttl,
        )
        async with self._uow() as uow:
            await uow.auth_sessions.add(auth_session)
            await uow.commit()
        return user, mint_token_pair(self._issuer, auth_session, access_token_id=self._ids.new_id(), now=now)

    async def _find_user(self, raw_email: str) -> User | None:
        try:
            email = Email.parse(raw_email)
        except ValidationFailed:
            return None
        async with self._uow() as uow:
            return await uow.users.get_by_email(email)


@dataclass(frozen=True, slots=True)
class Refreshed:
    user_id: UUID
    tokens: TokenPair


class RefreshTokens:
    """Rotate a refresh token: the presented one dies, a new pair is returned.

    - a refresh token works once; presenting a used one revokes its whole login
      (every access and refresh token of that auth session) and fails with
      :class:`RefreshTokenReused` (naming the owner, for the audit);
    - a token of a revoked, expired or deleted login fails with ``NotAuthenticated``;
    - the session row is locked while rotating, so two concurrent uses of one
      token cannot both succeed;
    - an access token is never accepted here.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        issuer: TokenIssuer,
        clock: Clock,
        ids: IdGenerator,
        sessions: RecentAuthSessions | None = None,
    ) -> None:
        self._uow, self._issuer, self._clock, self._ids = uow, issuer, clock, ids
        self._sessions = sessions or RecentAuthSessions(ttl=0)

    async def execute(self, refresh_token: str) -> Refreshed:
        claims = _verify(self._issuer, refresh_token, TokenType.REFRESH)
        now = self._clock.now()
        async with self._uow() as uow:
            auth_session = await uow.auth_sessions.get(claims.session_id, for_update=True)
            if (
                auth_session is None
                or auth_session.user_id != claims.user_id
                or not auth_session.is_active(now)
            ):
                raise NotAuthenticated()
            rotated = auth_session.rotate(claims.token_id, self._ids.new_id(), now)
            await uow.auth_sessions.update(auth_session)
            await uow.commit()  # commit even on reuse: the revocation must stick
        if not rotated:
            self._sessions.forget(claims.session_id)
            raise RefreshTokenReused(claims.user_id)
        tokens = mint_token_pair(self._issuer, auth_session, access_token_id=self._ids.new_id(), now=now)
        return Refreshed(claims.user_id, tokens)


class Authenticate:
    """Turn a bearer access token into a :class:`Principal`.

    - signature, expiry and type are checked without I/O (no bcrypt ever);
    - then the auth session is read (one primary-key read): revoked (logout, password
      change, refresh reuse) or deleted (account deleted) sessions fail. The read is shared
      with every request of the same login for ``RecentAuthSessions``' ttl (1 s by default):
      a revocation made by this process counts at once, one made by another instance within
      that second, and a burst of requests of one login costs one read, not one each.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        issuer: TokenIssuer,
        clock: Clock,
        sessions: RecentAuthSessions | None = None,
    ) -> None:
        self._uow, self._issuer, self._clock = uow, issuer, clock
        self._sessions = sessions or RecentAuthSessions(ttl=0)

    async def execute(self, access_token: str) -> Principal:
        claims = _verify(self._issuer, access_token, TokenType.ACCESS)
        auth_session = await self._sessions.get(claims.session_id, lambda: self._read(claims.session_id))
        if (
            auth_session is None
            or auth_session.user_id != claims.user_id
            or not auth_session.is_active(self._clock.now())
        ):
            raise NotAuthenticated()
        return Principal(user_id=claims.user_id, session_id=claims.session_id)

    async def _read(self, session_id: UUID) -> AuthSession | None:
        async with self._uow() as uow:
            return await uow.auth_sessions.get(session_id)


class LogOut:
    """End the caller's login: its access and refresh tokens stop working.

    A refresh token passed along is revoked too when it belongs to the same user
    (another login of theirs); anything else about it is ignored, so logging out
    always succeeds for an authenticated caller.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        issuer: TokenIssuer,
        clock: Clock,
        sessions: RecentAuthSessions | None = None,
    ) -> None:
        self._uow, self._issuer, self._clock = uow, issuer, clock
        self._sessions = sessions or RecentAuthSessions(ttl=0)

    async def execute(self, principal: Principal, refresh_token: str | None = None) -> None:
        session_ids = {principal.session_id}
        if refresh_token:
            extra = self._claims_or_none(refresh_token)
            if extra is not None and extra.user_id == principal.user_id:
                session_ids.add(extra.session_id)
        now = self._clock.now()
        async with self._uow() as uow:
            for session_id in sorted(session_ids):
                await self._revoke(uow.auth_sessions, session_id, principal.user_id, now)
            await uow.commit()
        self._sessions.forget(*session_ids)

    @staticmethod
    async def _revoke(
        repository: AuthSessionRepository, session_id: UUID, user_id: UUID, now: datetime
    ) -> None:
        auth_session = await repository.get(session_id, for_update=True)
        if auth_session is not None and auth_session.user_id == user_id:
            auth_session.revoke(now)
            await repository.update(auth_session)

    def _claims_or_none(self, token: str) -> TokenClaims | None:
        try:
            return self._issuer.verify(token, expected_type=TokenType.REFRESH)
        except InvalidToken:
            return None


def _verify(issuer: TokenIssuer, token: str, expected: TokenType) -> TokenClaims:
    try:
        return issuer.verify(token, expected_type=expected)
    except InvalidToken:
        raise NotAuthenticated() from None
