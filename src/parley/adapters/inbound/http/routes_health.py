"""``/health``: liveness plus a database check (never rate limited, no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from parley.adapters.inbound.http.edge import edge_of
from parley.adapters.inbound.http.json_response import NewlineJSONResponse
from parley.adapters.inbound.http.schemas import HealthOut
from parley.ports.persistence import StorageUnavailable

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(request: Request) -> NewlineJSONResponse:
    """200 when the database answers, 503 with the failing check marked otherwise.

    The probe is bounded in time and has a connection of its own, so a busy pool or event
    loop does not make a healthy database look down.
    """
    edge = edge_of(request)
    try:
        await edge.services.database_probe().ping()
        database = "ok"
    except StorageUnavailable:
        database = "unavailable"
    ok = database == "ok"
    body = HealthOut(
        status="ok" if ok else "unavailable",
        version=request.app.version,
        environment=edge.environment,
        checks={"database": database},
    )
    return NewlineJSONResponse(body.model_dump(), status_code=200 if ok else 503)
