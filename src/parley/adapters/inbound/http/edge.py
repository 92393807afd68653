"""What the HTTP adapter is given by the composition root: one typed object, read in one place.

``create_app`` builds an :class:`HttpEdge` and attaches it to the app; routes, dependencies and
middleware-adjacent code reach it only through :func:`edge_of` (and use cases only through
:func:`provided`), so a misspelt use case is a type error, not a runtime ``AttributeError``, and
no setting's default is repeated at a call site.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import Depends, FastAPI, Request

if TYPE_CHECKING:
    from parley.adapters.inbound.http.metrics import HttpMetrics
    from parley.adapters.inbound.http.rate_limits import RateLimitGate
    from parley.application.auth import Authenticate, LogIn, LogOut, RefreshTokens, RegisterUser
    from parley.application.chat.conversations import (
        CreateConversation,
        DeleteConversation,
        GetConversation,
        ListConversations,
        RenameConversation,
    )
    from parley.application.chat.history import ClearMessages, ListMessages
    from parley.application.chat.sending import (
        DecideApproval,
        GetPendingApproval,
        SendMessage,
        StreamDecision,
        StreamReply,
    )
    from parley.application.memory import ForgetAllMemories, ForgetMemory, ListMemories
    from parley.application.users import ChangeEmail, ChangePassword, DeleteAccount, GetProfile
    from parley.ports.auth import TokenIssuer
    from parley.ports.persistence import DatabaseProbe

T = TypeVar("T")


class Services(Protocol):
    """What the HTTP adapter calls, each as a factory (a fresh use case per request).

    The dependency-injector container provides exactly these names; the adapter never sees
    the container itself. (Read-only members, so a provider object that is callable fits.)
    """

    @property
    def register_user(self) -> Callable[[], RegisterUser]: ...

    @property
    def log_in(self) -> Callable[[], LogIn]: ...

    @property
    def refresh_tokens(self) -> Callable[[], RefreshTokens]: ...

    @property
    def log_out(self) -> Callable[[], LogOut]: ...

    @property
    def authenticate(self) -> Callable[[], Authenticate]: ...

    @property
    def get_profile(self) -> Callable[[], GetProfile]: ...

    @property
    def change_email(self) -> Callable[[], ChangeEmail]: ...

    @property
    def change_password(self) -> Callable[[], ChangePassword]: ...

    @property
    def delete_account(self) -> Callable[[], DeleteAccount]: ...

    @property
    def list_memories(self) -> Callable[[], ListMemories]: ...

    @property
    def forget_memory(self) -> Callable[[], ForgetMemory]: ...

    @property
    def forget_all_memories(self) -> Callable[[], ForgetAllMemories]: ...

    @property
    def create_conversation(self) -> Callable[[], CreateConversation]: ...

    @property
    def list_conversations(self) -> Callable[[], ListConversations]: ...

    @property
    def get_conversation(self) -> Callable[[], GetConversation]: ...

    @property
    def rename_conversation(self) -> Callable[[], RenameConversation]: ...

    @property
    def delete_conversation(self) -> Callable[[], DeleteConversation]: ...

    @property
    def list_messages(self) -> Callable[[], ListMessages]: ...

    @property
    def clear_messages(self) -> Callable[[], ClearMessages]: ...

    @property
    def send_message(self) -> Callable[[], SendMessage]: ...

    @property
    def stream_reply(self) -> Callable[[], StreamReply]: ...

    @property
    def get_pending_approval(self) -> Callable[[], GetPendingApproval]: ...

    @property
    def decide_approval(self) -> Callable[[], DecideApproval]: ...

    @property
    def stream_decision(self) -> Callable[[], StreamDecision]: ...

    # checks tokens (no I/O) to key rate limits by user
    @property
    def token_issuer(self) -> Callable[[], TokenIssuer]: ...

    # /health
    @property
    def database_probe(self) -> Callable[[], DatabaseProbe]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTiming:
    """``ping_seconds``: a ``: ping`` comment after this long without an event;
    ``drain_seconds``: how long a stream may go on once the server is stopping."""

    ping_seconds: float
    drain_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpEdge:
    """Everything the HTTP adapter needs from outside it."""

    services: Services
    metrics: HttpMetrics
    streams: StreamTiming
    environment: str  # reported by /health
    rate_limits: RateLimitGate | None  # None: rate limits are off


def attach_edge(app: FastAPI, edge: HttpEdge) -> None:
    app.state.parley_edge = edge


def edge_of(request: Request) -> HttpEdge:
    """The app's :class:`HttpEdge` (attached by ``create_app`` before the app serves)."""
    edge: HttpEdge = request.app.state.parley_edge
    return edge


def provided(pick: Callable[[Services], Callable[[], T]]) -> Any:
    """A dependency giving a fresh object from the factory ``pick`` names, e.g.
    ``Annotated[LogIn, provided(lambda s: s.log_in)]``."""

    # async on purpose: FastAPI runs plain ``def`` dependencies in a worker thread,
    # a thread hop per request for what is an attribute lookup and a constructor call.
    async def provide(request: Request) -> T:
        return pick(edge_of(request).services)()

    return Depends(provide)
