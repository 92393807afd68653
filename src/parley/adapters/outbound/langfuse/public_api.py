"""``ScoreSink`` and ``TraceSource`` over Langfuse's public REST API (httpx; not the SDK, whose
score upload is a fire-and-forget batch that cannot tell the caller a score was refused).

- Basic auth: the public key as user, the secret key as password.
- ``POST /api/public/scores``: one NUMERIC score on a trace, with a deterministic ``id``
  (``<trace id>-<name>``), which Langfuse treats as an upsert: re-scoring a trace replaces
  its score instead of piling up duplicates.

Reading recent turns (:class:`LangfuseTraceSource`) uses Langfuse's current read endpoints
first and the deprecated ones only on a server that lacks them:

- ``GET /api/public/v2/observations`` (``name=chat-turn``, ``isRootObservation=true``,
  ``fromStartTime``, ``fields=core,basic,io,metrics``, ``limit``, then ``cursor`` from
  ``meta.cursor`` until the answer has none): each turn's *root observation*, which carries the
  trace id (``traceId``), the user input and the reply (``input``/``output``: "always returned
  as raw strings" per the definition; the SDK sends a ``str`` as JSON text, so a JSON string is
  unwrapped), ``environment`` and ``latency`` (seconds).
  The page link is ``<host>/trace/<trace id>`` (Langfuse redirects it to the project's page),
  as the tracer's own links.
- ``GET /api/public/v3/scores`` (``name=<a>,<b>`` comma-separated, ``fromTimestamp``,
  ``fields=subject``, ``limit`` ≤ 100, ``cursor`` the same way): which asked-about scores each
  trace carries (``subject.kind`` ``trace`` -> ``subject.id``; ``observation`` ->
  ``subject.traceId``), one paged query for all the names.
- Fallback, decided once per source (one ``parley eval traces`` run) and per endpoint: when the
  current endpoint answers **404** (an older self-hosted Langfuse without it; a v3 server answers
  404 on v2 observations unless it runs in v4 write mode -- ``LangfuseNotFoundError`` in
  ``web/src/pages/api/public/v2/observations/index.ts`` -- while its ``/v3/scores`` route has no
  such gate, hence one decision per endpoint), the deprecated one is used from then
  on: ``GET /api/public/traces`` (``name``, ``fromTimestamp``, ``page``/``limit`` up to
  ``meta.totalPages``; ``input``/``output`` parsed, ``htmlPath``) and ``GET /api/public/v2/scores``
  (per name, ``page``/``limit``, ``traceId``). Any other failure (401, 5xx, no answer) is not
  taken as "endpoint missing": it is raised.

Why: Langfuse's API definition (``fern/apis/server/definition/trace.yml`` and ``scores.yml`` in
github.com/langfuse/langfuse, read at commit 62751446149b, Aug 2026) marks ``GET /traces`` and
``GET /v2/scores`` deprecated: "On Langfuse Cloud, Langfuse v3 is deprecated and this endpoint
will be removed on November 16, 2026", replaced by ``GET /v2/observations`` and
``GET /v3/scores`` (``observations.yml``, ``scores-v3.yml``); self-hosted v3 keeps the old ones
(they go away when it upgrades to v4), hence the fallback.

Every request is bounded by ``timeout`` seconds; transport errors, timeouts, non-2xx answers and
malformed bodies become :class:`ScoreNotSent` / :class:`TracesUnavailable`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from parley.ports.scoring import RecordedTurn, Score, ScoreNotSent, TracesUnavailable

# The name LangfuseTurnTrace gives each chat turn's trace and root observation (turn.TRACE_NAME;
# not imported from there: that module loads the Langfuse SDK, which this adapter does not need).
CHAT_TURN_TRACE = "chat-turn"
PAGE_SIZE = 100  # the most the paged lists serve (v3 scores answer 400 above 100)
MAX_PAGES = 1_000  # a guard against a server whose pages never end
OBSERVATION_FIELDS = "core,basic,io,metrics"  # ids and times, name/environment, input/output, latency


class EndpointMissing(TracesUnavailable):
    """The server answered 404 on a list endpoint: it does not have it (an older Langfuse)."""


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
        """Every item of a page-numbered list (``data`` + ``meta.totalPages``); raises
        :class:`TracesUnavailable` (:class:`EndpointMissing` on 404)."""
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

    async def get_cursor_pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a cursor-paged list (``data`` + ``meta.cursor``, absent on the last
        page); raises :class:`TracesUnavailable` (:class:`EndpointMissing` on 404)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            query = {**params, "limit": str(PAGE_SIZE)} | ({"cursor": cursor} if cursor else {})
            body = await self._get(path, query)
            data, meta = body.get("data"), body.get("meta")
            if not isinstance(data, list) or not isinstance(meta, dict):
                raise TracesUnavailable(f"GET {path}: not a paged list (no data/meta)")
            items.extend(item for item in data if isinstance(item, dict))
            cursor = meta.get("cursor")
            if not isinstance(cursor, str) or not cursor:
                break
            if cursor in seen:  # a server handing out the same page again would loop forever
                raise TracesUnavailable(f"GET {path}: the cursor repeats")
            seen.add(cursor)
        return items

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._client.get(path, params=params)
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPStatusError as refused:
            status = refused.response.status_code
            error = EndpointMissing if status == httpx.codes.NOT_FOUND else TracesUnavailable
            raise error(f"GET {path}: HTTP {status}") from None
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
    """``TraceSource``: the ``chat-turn`` turns since a time, with the scores they carry.

    Reads the current endpoints, or the deprecated ones where the server lacks them (see the
    module docstring); which ones is decided on the first request of each and kept for the
    source's life. ``skip_environment``: turns of that Langfuse environment (``parley eval``'s
    own) are left out.
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
        # None until the first request tells; then False = the deprecated endpoint from then on.
        self._observations_api: bool | None = None
        self._scores_api: bool | None = None

    @property
    def endpoints(self) -> dict[str, str]:
        """Which list endpoints this source has settled on so far (for logs and tests)."""
        chosen: dict[str, str] = {}
        if self._observations_api is not None:
            chosen["turns"] = "/v2/observations" if self._observations_api else "/traces"
        if self._scores_api is not None:
            chosen["scores"] = "/v3/scores" if self._scores_api else "/v2/scores"
        return chosen

    async def recent_turns(self, since: datetime, score_names: Collection[str]) -> list[RecordedTurn]:
        after = _iso(since)
        turns = await self._turns(after)
        if turns and score_names:
            scored = await self._scored(after, score_names)
            turns = [replace(turn, scored=frozenset(scored.get(turn.trace_id, ()))) for turn in turns]
        return sorted(turns, key=lambda turn: turn.at)

    async def _turns(self, after: str) -> list[RecordedTurn]:
        """The turns since ``after``, one per trace, from whichever endpoint the server has."""
        if self._observations_api is not False:
            try:
                roots = await self._api.get_cursor_pages(
                    "/v2/observations",
                    {
                        "name": CHAT_TURN_TRACE,
                        "isRootObservation": "true",
                        "fromStartTime": after,
                        "fields": OBSERVATION_FIELDS,
                    },
                )
            except EndpointMissing:
                if self._observations_api:  # it answered earlier in this run: not a version gap
                    raise
                self._observations_api = False
            else:
                self._observations_api = True
                return _unique(map(self._from_observation, roots))
        traces = await self._api.get_pages(
            "/traces", {"name": CHAT_TURN_TRACE, "fromTimestamp": after, "orderBy": "timestamp.asc"}
        )
        return _unique(map(self._from_trace, traces))

    async def _scored(self, after: str, names: Collection[str]) -> dict[str, set[str]]:
        """Trace id -> which of ``names`` it carries (scores come after their trace: same ``since``)."""
        asked = set(names)
        if self._scores_api is not False:
            try:
                scores = await self._api.get_cursor_pages(
                    "/v3/scores",
                    {"name": ",".join(sorted(asked)), "fromTimestamp": after, "fields": "subject"},
                )
            except EndpointMissing:
                if self._scores_api:
                    raise
                self._scores_api = False
            else:
                self._scores_api = True
                return _carried(
                    (_v3_trace_id(score), score.get("name")) for score in scores if score.get("name") in asked
                )
        pairs: list[tuple[object, object]] = []
        for name in sorted(asked):  # v2 takes one name per query
            scores = await self._api.get_pages(
                "/v2/scores", {"name": name, "fromTimestamp": after, "fields": "score"}
            )
            pairs.extend((score.get("traceId"), name) for score in scores)
        return _carried(pairs)

    def _from_observation(self, root: dict[str, Any]) -> RecordedTurn | None:
        """A turn from its root observation (``/v2/observations``); None if not a root, of the
        skipped environment, or without text in or out."""
        if root.get("isRootObservation") is False or (
            "isRootObservation" not in root and root.get("parentObservationId")
        ):
            return None  # a server ignoring the filter must not turn child spans into turns
        trace_id = root.get("traceId")
        question, reply = _text(_unwrapped(root.get("input"))), _text(_unwrapped(root.get("output")))
        if not isinstance(trace_id, str) or not trace_id or not question or not reply:
            return None
        if self._skipped(root):
            return None
        started = _parse_time(root.get("startTime"))
        latency = root.get("latency")
        if not isinstance(latency, int | float) and isinstance(root.get("endTime"), str):
            latency = (_parse_time(root["endTime"]) - started).total_seconds()
        return RecordedTurn(
            trace_id=trace_id,
            input=question,
            output=reply,
            at=started,
            latency=_latency(latency),
            url=f"{self._api.host}/trace/{trace_id}",
        )

    def _from_trace(self, trace: dict[str, Any]) -> RecordedTurn | None:
        """A turn from a deprecated ``/traces`` item; None as for an observation."""
        trace_id, question, reply = trace.get("id"), _text(trace.get("input")), _text(trace.get("output"))
        if not isinstance(trace_id, str) or not question or not reply or self._skipped(trace):
            return None
        path = trace.get("htmlPath")
        return RecordedTurn(
            trace_id=trace_id,
            input=question,
            output=reply,
            at=_parse_time(trace.get("timestamp")),
            latency=_latency(trace.get("latency")),
            url=f"{self._api.host}{path}" if isinstance(path, str) and path.startswith("/") else None,
        )

    def _skipped(self, item: dict[str, Any]) -> bool:
        return self._skip_environment is not None and item.get("environment") == self._skip_environment

    async def aclose(self) -> None:
        await self._api.aclose()


def _unique(turns: Iterable[RecordedTurn | None]) -> list[RecordedTurn]:
    """The turns, one per trace (the first seen), without the Nones."""
    by_trace: dict[str, RecordedTurn] = {}
    for turn in turns:
        if turn is not None:
            by_trace.setdefault(turn.trace_id, turn)
    return list(by_trace.values())


def _carried(pairs: Iterable[tuple[object, object]]) -> dict[str, set[str]]:
    """Trace id -> score names, from (trace id, name) pairs; pairs without both are ignored."""
    carried: dict[str, set[str]] = {}
    for trace_id, name in pairs:
        if isinstance(trace_id, str) and trace_id and isinstance(name, str):
            carried.setdefault(trace_id, set()).add(name)
    return carried


def _v3_trace_id(score: dict[str, Any]) -> str | None:
    """The trace a v3 score is on: its subject's id for a trace score, the subject's ``traceId``
    for an observation score; None for session and experiment scores."""
    subject = score.get("subject")
    if not isinstance(subject, dict):
        return None
    match subject.get("kind"):
        case "trace":
            trace_id = subject.get("id")
        case "observation":
            trace_id = subject.get("traceId")
        case _:
            return None
    return trace_id if isinstance(trace_id, str) else None


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


def _latency(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def _unwrapped(value: object) -> object:
    """v2 observations serve input/output as the raw stored string, which for the SDK is JSON
    text (a Python ``str`` becomes ``"..."``): a JSON string is unwrapped; anything else (an
    object, or text that is not JSON) is kept as it came."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, str):
            return decoded
    return value


def _text(value: object) -> str:
    """A turn's input or output as text: Parley's are strings; another client's JSON is shown as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False)
