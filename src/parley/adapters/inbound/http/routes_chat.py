"""``/api/v1/chat``: sessions (conversations), their history, and chat turns."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from sse_starlette import EventSourceResponse

from parley.adapters.inbound.http.dependencies import CurrentPrincipal
from parley.adapters.inbound.http.edge import edge_of, provided
from parley.adapters.inbound.http.rate_limits import RATE_LIMITED, RouteLimit, rate_limit
from parley.adapters.inbound.http.responses import Responses, errors, not_found
from parley.adapters.inbound.http.schemas import (
    ApprovalDecisionRequest,
    ApprovalOut,
    AwaitingApprovalOut,
    CreateSessionRequest,
    DecisionOut,
    ExchangeOut,
    MessageOut,
    MessagePageOut,
    RenameSessionRequest,
    SendMessageRequest,
    SessionOut,
    SessionPageOut,
    Text,
)
from parley.adapters.inbound.http.sse import stream_turn
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
    DecisionInput,
    GetPendingApproval,
    SendMessage,
    StreamDecision,
    StreamReply,
)

router = APIRouter(prefix="/api/v1/chat", tags=["chat"], dependencies=[RATE_LIMITED])

SessionId = Annotated[UUID, "session id"]
_NOT_FOUND = not_found("Session not found")
_BUSY: Responses = {409: {"description": "A reply is already being generated for this session"}}
_MODEL: Responses = {
    502: {"description": "The language model failed after retries"},
    504: {"description": "The language model timed out"},
}
_STREAM: Responses = {
    200: {"content": {"text/event-stream": {}}, "description": "message, token*, tool*, done|error|approval"}
}
_AWAITING: Responses = {
    409: {"description": "A reply is being generated, or a tool call awaits approval, in this session"},
    202: {"model": AwaitingApprovalOut, "description": "The agent paused on a tool call needing approval"},
}
_APPROVAL_NOT_FOUND = not_found("Approval not found")
_DECISION: Responses = {
    202: {"model": DecisionOut, "description": "The agent paused again, on another tool call"},
    409: {"description": "The resumed turn is already running"},
    410: {"description": "The approval has expired"},
}
_DECISION_STREAM: Responses = {
    200: {"content": {"text/event-stream": {}}, "description": "token*, tool*, done|error|approval"},
    409: {"description": "The resumed turn is already running"},
    410: {"description": "The approval has expired"},
}


@router.post("/sessions", status_code=status.HTTP_201_CREATED, responses=errors())
async def create_session(
    principal: CurrentPrincipal,
    use_case: Annotated[CreateConversation, provided(lambda s: s.create_conversation)],
    body: CreateSessionRequest | None = None,
) -> SessionOut:
    """Open a chat session (name defaults to "New chat")."""
    return SessionOut.of(await use_case.execute(principal, body.name if body else None))


@router.get("/sessions", responses=errors())
async def list_sessions(
    principal: CurrentPrincipal,
    use_case: Annotated[ListConversations, provided(lambda s: s.list_conversations)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[Text | None, Query(max_length=512)] = None,
) -> SessionPageOut:
    """The caller's sessions, most recently active first; pass `next_cursor` back as `cursor`."""
    page = await use_case.execute(principal, limit=limit, cursor=cursor)
    return SessionPageOut(items=[SessionOut.of(c) for c in page.items], next_cursor=page.next_cursor)


@router.get("/sessions/{session_id}", responses=errors(_NOT_FOUND))
async def get_session(
    session_id: SessionId,
    principal: CurrentPrincipal,
    use_case: Annotated[GetConversation, provided(lambda s: s.get_conversation)],
) -> SessionOut:
    return SessionOut.of(await use_case.execute(principal, session_id))


@router.patch("/sessions/{session_id}", responses=errors(_NOT_FOUND))
async def rename_session(
    session_id: SessionId,
    body: RenameSessionRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[RenameConversation, provided(lambda s: s.rename_conversation)],
) -> SessionOut:
    """Rename (1..200 characters after trimming)."""
    return SessionOut.of(await use_case.execute(principal, session_id, body.name))


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(_NOT_FOUND))
async def delete_session(
    session_id: SessionId,
    principal: CurrentPrincipal,
    use_case: Annotated[DeleteConversation, provided(lambda s: s.delete_conversation)],
) -> Response:
    """Delete the session, its messages and the agent's memory of it."""
    await use_case.execute(principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions/{session_id}/messages", responses=errors(_NOT_FOUND))
async def list_messages(
    session_id: SessionId,
    principal: CurrentPrincipal,
    use_case: Annotated[ListMessages, provided(lambda s: s.list_messages)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[UUID | None, Query()] = None,
) -> MessagePageOut:
    """The newest `limit` messages older than `before`, oldest first; `next_cursor` pages back."""
    page = await use_case.execute(principal, session_id, limit=limit, before=before)
    items = [MessageOut.of(m) for m in page.items]
    return MessagePageOut(items=items, next_cursor=page.next_cursor)


@router.delete(
    "/sessions/{session_id}/messages", status_code=status.HTTP_204_NO_CONTENT, responses=errors(_NOT_FOUND)
)
async def clear_messages(
    session_id: SessionId,
    principal: CurrentPrincipal,
    use_case: Annotated[ClearMessages, provided(lambda s: s.clear_messages)],
) -> Response:
    """Clear the history and the agent's memory of it."""
    await use_case.execute(principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sessions/{session_id}/messages", responses=errors(_NOT_FOUND, _AWAITING, _MODEL))
@rate_limit(RouteLimit.CHAT)
async def send_message(
    request: Request,
    response: Response,
    session_id: SessionId,
    body: SendMessageRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[SendMessage, provided(lambda s: s.send_message)],
) -> ExchangeOut | AwaitingApprovalOut:
    """Send a message and wait for the whole reply (202 when the agent paused on a tool call
    that needs approval: decide it with POST .../approval)."""
    exchange = await use_case.execute(principal, session_id, body.content)
    assert exchange.message is not None  # a new message's turn
    if exchange.approval is not None:
        response.status_code = status.HTTP_202_ACCEPTED
        return AwaitingApprovalOut(
            message=MessageOut.of(exchange.message), approval=ApprovalOut.of(exchange.approval)
        )
    assert exchange.reply is not None  # ended, not paused
    return ExchangeOut(message=MessageOut.of(exchange.message), reply=MessageOut.of(exchange.reply))


@router.post(
    "/sessions/{session_id}/messages/stream",
    response_class=EventSourceResponse,
    responses=errors(_NOT_FOUND, _BUSY, _STREAM, {409: _AWAITING[409]}),
)
@rate_limit(RouteLimit.CHAT_STREAM)
async def stream_message(
    request: Request,
    session_id: SessionId,
    body: SendMessageRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[StreamReply, provided(lambda s: s.stream_reply)],
) -> EventSourceResponse:
    """Send a message and stream the reply as Server-Sent Events."""
    turn = await use_case.execute(principal, session_id, body.content)
    return stream_turn(turn, edge_of(request).streams)


@router.get("/sessions/{session_id}/approval", responses=errors(_APPROVAL_NOT_FOUND))
async def get_pending_approval(
    session_id: SessionId,
    principal: CurrentPrincipal,
    use_case: Annotated[GetPendingApproval, provided(lambda s: s.get_pending_approval)],
) -> ApprovalOut:
    """The tool call this session's agent waits to have approved (404 when none is pending)."""
    return ApprovalOut.of(await use_case.execute(principal, session_id))


@router.post("/sessions/{session_id}/approval", responses=errors(_APPROVAL_NOT_FOUND, _DECISION, _MODEL))
@rate_limit(RouteLimit.CHAT)
async def decide_approval(
    request: Request,
    response: Response,
    session_id: SessionId,
    body: ApprovalDecisionRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[DecideApproval, provided(lambda s: s.decide_approval)],
) -> DecisionOut:
    """Approve, reject (the model is told, with the reason) or edit the pending tool call, and
    wait for the rest of the reply (202 with the next approval when the agent pauses again)."""
    exchange = await use_case.execute(principal, session_id, body.id, _decision(body))
    if exchange.approval is not None:
        response.status_code = status.HTTP_202_ACCEPTED
        return DecisionOut(approval=ApprovalOut.of(exchange.approval))
    assert exchange.reply is not None  # ended, not paused
    return DecisionOut(reply=MessageOut.of(exchange.reply))


@router.post(
    "/sessions/{session_id}/approval/stream",
    response_class=EventSourceResponse,
    responses=errors(_APPROVAL_NOT_FOUND, _DECISION_STREAM),
)
@rate_limit(RouteLimit.CHAT_STREAM)
async def stream_decision(
    request: Request,
    session_id: SessionId,
    body: ApprovalDecisionRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[StreamDecision, provided(lambda s: s.stream_decision)],
) -> EventSourceResponse:
    """Decide the pending tool call and stream the rest of the reply as Server-Sent Events
    (as a message's stream, without the ``message`` event)."""
    turn = await use_case.execute(principal, session_id, body.id, _decision(body))
    return stream_turn(turn, edge_of(request).streams)


def _decision(body: ApprovalDecisionRequest) -> DecisionInput:
    return DecisionInput(body.decision, reason=body.reason, arguments=body.arguments)
