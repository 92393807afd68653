"""``ScoreSink`` and ``TraceSource`` over Langfuse's public REST API (httpx; not the SDK, whose
score upload is a fire-and-forget batch that cannot tell the caller a score was refused).

- Basic auth: the public key as user, the secret key as password.
- ``POST /api/public/scores``: one NUMERIC score on a trace, with a deterministic ``id``
  (``<trace id>-<name>``), which Langfuse treats as an upsert: re-scoring a trace replaces
  its score instead of piling up duplicates.
- ``GET /api/public/traces`` (``name=chat-turn``, ``fromTimestamp``, ``page``/``limit``,
  every page up to ``meta.totalPages``): the turns. Each lists only the *ids* of its scores,
  so the names are read from ``GET /api/public/v2/scores`` (per asked-about name, since the
  same time, every page) -- one paged query per metric instead of one per trace.
- Every request is bounded by ``timeout`` seconds; transport errors, timeouts, non-2xx
  answers and malformed bodies become :class:`ScoreNotSent` / :class:`TracesUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import httpx

from parley.ports.scoring import RecordedTurn, Score, ScoreNotSent, TracesUnavailable

# The name LangfuseTurnTrace gives each chat turn's trace (turn.TRACE_NAME; not imported
# from there: that module loads the Langfuse SDK, which this adapter does not need).
CHAT_TURN_TRACE = "chat-turn"
PAGE_SIZE = 100  # the most Langfuse serves per page
MAX_PAGES = 1_000  # a guard against a server whose totalPages never ends


class _PublicApi:
    """An authenticated client of ``<host>/api/public``."""

    def __init__(
        self, public_key: str, secret_key: str, host: str, *, timeout: float = 10.0, transport: Any = None
    ) -> None:
        self.host = host.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=f"{self.host}/api/public",
            auth=httpx.BasicAuth(public_key, secret_key),
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    async def get_pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a paged list (``data`` + ``meta.totalPages``); raises
        :class:`TracesUnavailable`."""
        items: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= min(pages, MAX_PAGES):
            body = await self._get(path, {**params, "page": str(page), "limit": str(PAGE_SIZE)})
            data, meta = body.get("data"), body.get("meta")
            if not isinstance(data, list) or not isinstance(meta, dict):
                raise TracesUnavailable(f"GET {path}: not a paged list (no data/meta)")
            items.extend(item for item in data if isinstance(item, dict))
            pages = int(meta.get("totalPages") or 0)
            page += 1
        return items

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.get(path, params=params)
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPStatusError as refused:
            raise TracesUnavailable(f"GET {path}: HTTP {refused.response.status_code}") from None
        except httpx.HTTPError as failed:
            raise TracesUnavailable(f"GET {path}: {type(failed).__name__}") from None
        except ValueError:
            raise TracesUnavailable(f"GET {path}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise TracesUnavailable(f"GET {path}: the answer is not a JSON object")
        return body

    async def post(self, path: str, payload: dict[str, Any]) -> None:
        try:
            response = await self._client.post(path, json=payload)
            response.raise_for_status()
        except httpx.HTTPStatusError as refused:
            raise ScoreNotSent(f"POST {path}: HTTP {refused.response.status_code}") from None
        except httpx.HTTPError as failed:
            raise ScoreNotSent(f"POST {path}: {type(failed).__name__}") from None

    async def aclose(self) -> None:
        await self._client.aclose()


class LangfuseScoreSink:
    """``ScoreSink``: each score a NUMERIC score on its trace (see the module docstring)."""

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        host: str,
        *,
        timeout: float = 10.0,
        environment: str | None = None,
        transport: Any = None,
    ) -> None:
        self._api = _PublicApi(public_key, secret_key, host, timeout=timeout, transport=transport)
        self._environment = environment

    @property
    def destination(self) -> str:
        return f"Langfuse at {self._api.host}"

    async def send(self, score: Score) -> None:
        payload: dict[str, Any] = {
            "id": f"{score.trace_id}-{score.name}",
            "traceId": score.trace_id,
            "name": score.name,
            "value": score.value,
            "dataType": "NUMERIC",
            "comment": score.comment,
        }
        if self._environment:
            payload["environment"] = self._environment
        await self._api.post("/scores", payload)

    async def aclose(self) -> None:
        await self._api.aclose()


class LangfuseTraceSource:
    """``TraceSource``: the ``chat-turn`` traces since a time, with the scores they carry.

    ``skip_environment``: traces of that Langfuse environment (``parley eval``'s own) are left out.
    """

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        host: str,
        *,
        timeout: float = 10.0,
        skip_environment: str | None = None,
        transport: Any = None,
    ) -> None:
        self._api = _PublicApi(public_key, secret_key, host, timeout=timeout, transport=transport)
        self._skip_environment = skip_environment

    async def recent_turns(self, since: datetime, score_names: Collection[str]) -> list[RecordedTurn]:
        after = _iso(since)
        traces = await self._api.get_pages(
            "/traces", {"name": CHAT_TURN_TRACE, "fromTimestamp": after, "orderBy": "timestamp.asc"}
        )
        scored = await self._scored(after, score_names) if any(t.get("scores") for t in traces) else {}
        turns = (self._turn(trace, scored) for trace in traces)
        return sorted((turn for turn in turns if turn is not None), key=lambda turn: turn.at)

    async def _scored(self, after: str, names: Collection[str]) -> dict[str, set[str]]:
        """Trace id -> which of ``names`` it carries (scores come after their trace: same ``since``)."""
        carried: dict[str, set[str]] = {}
        for name in names:
            for score in await self._api.get_pages(
                "/v2/scores", {"name": name, "fromTimestamp": after, "fields": "score"}
            ):
                trace_id = score.get("traceId")
                if isinstance(trace_id, str):
                    carried.setdefault(trace_id, set()).add(name)
        return carried

    def _turn(self, trace: dict[str, Any], scored: dict[str, set[str]]) -> RecordedTurn | None:
        trace_id, question, reply = trace.get("id"), _text(trace.get("input")), _text(trace.get("output"))
        if not isinstance(trace_id, str) or not question or not reply:
            return None
        if self._skip_environment is not None and trace.get("environment") == self._skip_environment:
            return None
        path = trace.get("htmlPath")
        latency = trace.get("latency")
        return RecordedTurn(
            trace_id=trace_id,
            input=question,
            output=reply,
            at=_parse_time(trace.get("timestamp")),
            latency=float(latency) if isinstance(latency, int | float) and latency >= 0 else None,
            url=f"{self._api.host}{path}" if isinstance(path, str) and path.startswith("/") else None,
            scored=frozenset(scored.get(trace_id, ())),
        )

    async def aclose(self) -> None:
        await self._api.aclose()


def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as Langfuse's query parameters take it."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: object) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def _text(value: object) -> str:
    """A trace's input or output as text: Parley's are strings; another client's JSON is shown as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)
