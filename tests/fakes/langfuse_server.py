"""A local stand-in for a Langfuse host, for integration tests (127.0.0.1, free port).

``FakeLangfuseServer`` accepts what the Langfuse SDK sends and keeps it:

- ``POST /api/public/otel/v1/traces``: OTLP/HTTP spans, protobuf (``application/x-protobuf``)
  or JSON, gzip-compressed or not; decoded into ``ReceivedSpan`` (``spans``);
- ``POST /api/public/ingestion``: answered like Langfuse (207);
- ``POST /api/public/scores``: kept in ``scores`` (an ``id`` already there is replaced, as
  Langfuse upserts), answered 200 -- or ``scores_status`` (e.g. 500) without keeping it;
- ``GET /api/public/traces``: the traces put in ``traces`` (dicts shaped like Langfuse's),
  filtered by ``name`` and ``fromTimestamp``, paged by ``page`` and ``limit`` but never more
  than ``page_size`` a page (so a test needs only a few traces for several pages);
- ``GET /api/public/v2/scores``: ``scores`` filtered by ``name`` and ``fromTimestamp``, paged alike;
- ``GET /api/public/v2/observations`` (Langfuse v4's read API): each trace in ``traces`` as its
  root observation (an ``AGENT`` named like the trace, input/output as the raw JSON text the SDK
  sends) plus one child ``GENERATION``; filtered by ``name``, ``type``, ``isRootObservation``,
  ``environment`` (any of, repeatable) and ``fromStartTime``; only the ``fields`` groups asked
  for (``core,basic`` by default); paged by ``limit`` (400 above 1000) and an opaque ``cursor``
  in ``meta``, absent on the last page;
- ``GET /api/public/v3/scores``: ``scores`` in the v3 shape, filtered by ``name`` (comma-
  separated) and ``fromTimestamp``, ``subject`` only with ``fields=subject``, cursor-paged alike
  (400 above ``limit=100``);
- ``current_api = False``: the two v4 endpoints answer 404 as a Langfuse v3 does (an older
  self-hosted Langfuse); ``legacy_api = False``: the deprecated ``/traces`` and ``/v2/scores``
  answer 404 (Langfuse Cloud after their removal); ``get_status[path]``: that GET path answers
  with that status (e.g. only ``/api/public/v2/observations`` 404, or a 503);
- ``GET /api/public/projects``: one project, so SDK look-ups of the project id succeed;
- anything else: ``200 {}``.

Every request is also kept raw in ``requests`` (method, path, headers, body), in
arrival order; with ``response_delay`` it stands in for a slow Langfuse.

    with FakeLangfuseServer() as server:
        tracer = LangfuseTracer("pk", "sk", server.url)
        ...
        assert server.spans
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

OTLP_TRACES_PATH = "/api/public/otel/v1/traces"
PROJECT_ID = "fake-project"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span; ids are lowercase hex, times nanoseconds since the epoch."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_time_ns: int
    end_time_ns: int
    scope: str
    attributes: dict[str, Any]
    status_code: int  # OTLP: 0 unset, 1 ok, 2 error


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _spans_from_protobuf(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return [
        ReceivedSpan(
            name=span.name,
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex() or None,
            start_time_ns=span.start_time_unix_nano,
            end_time_ns=span.end_time_unix_nano,
            scope=scope_spans.scope.name,
            attributes={kv.key: _any_value(kv.value) for kv in span.attributes},
            status_code=span.status.code,
        )
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def _json_any_value(value: dict[str, Any]) -> Any:
    """OTLP/JSON AnyValue: ``{"stringValue": "x"}``, ``{"intValue": "3"}``, …"""
    for kind, raw in value.items():
        if kind == "intValue":
            return int(raw)
        if kind == "arrayValue":
            return [_json_any_value(v) for v in raw.get("values", [])]
        if kind == "kvlistValue":
            return {kv["key"]: _json_any_value(kv["value"]) for kv in raw.get("values", [])}
        if kind == "bytesValue":
            return base64.b64decode(raw)
        return raw
    return None


def _spans_from_json(body: bytes) -> list[ReceivedSpan]:
    payload = json.loads(body)
    return [
        ReceivedSpan(
            name=span["name"],
            trace_id=span["traceId"].lower(),
            span_id=span["spanId"].lower(),
            parent_span_id=span.get("parentSpanId", "").lower() or None,
            start_time_ns=int(span.get("startTimeUnixNano", 0)),
            end_time_ns=int(span.get("endTimeUnixNano", 0)),
            scope=scope_spans.get("scope", {}).get("name", ""),
            attributes={kv["key"]: _json_any_value(kv["value"]) for kv in span.get("attributes", [])},
            status_code=int(span.get("status", {}).get("code", 0)),
        )
        for resource_spans in payload.get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingHTTPServer

    def do_POST(self) -> None:
        body = self._read_body()
        time.sleep(self.server.owner.response_delay)
        self.server.owner._record(self._received(body))
        if self.path.startswith(OTLP_TRACES_PATH):
            self._answer_traces(body)
        elif self.path.startswith("/api/public/ingestion"):
            self._answer(207, {"successes": [], "errors": []})
        elif self.path.startswith("/api/public/scores"):
            self._answer_score(body)
        else:
            self._answer(200, {})

    def do_GET(self) -> None:
        self.server.owner._record(self._received(b""))
        owner = self.server.owner
        if self.path.startswith("/api/public/projects"):
            self._answer(200, {"data": [{"id": PROJECT_ID, "name": "Fake project", "metadata": {}}]})
        elif (path := urlsplit(self.path).path) in owner.get_status:
            self._answer(owner.get_status[path], {"message": "the fake was told to answer so"})
        elif path in LEGACY_LISTS and not owner.legacy_api:
            self._answer(404, {"message": "Not found"})
        elif path in CURRENT_LISTS and not owner.current_api:
            self._answer(
                404, {"message": "The observations v2 API is only available in a Langfuse v4 write mode."}
            )
        elif path == "/api/public/traces":
            self._answer(200, self._page(owner.traces, "timestamp"))
        elif path == "/api/public/v2/scores":
            self._answer(200, self._page(owner.scores, "timestamp"))
        elif path == "/api/public/v2/observations":
            self._answer_observations()
        elif path == "/api/public/v3/scores":
            self._answer_scores_v3()
        else:
            self._answer(200, {})

    def _answer_observations(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        one = {key: values[0] for key, values in query.items()}
        if int(one.get("limit", 50)) > 1000:
            self._answer(400, {"message": "limit: Number must be less than or equal to 1000"})
            return
        groups = set(one.get("fields", "core,basic").split(",")) | {"core"}
        since = _when(one["fromStartTime"]) if "fromStartTime" in one else None
        chosen = [
            observation
            for trace in self.server.owner.traces
            for observation in _observations(trace)
            if all(one[key] == str(observation[key]) for key in ("name", "type") if key in one)
            and (
                "isRootObservation" not in one
                or one["isRootObservation"] == str(observation["isRootObservation"]).lower()
            )
            and ("environment" not in query or observation["environment"] in query["environment"])
            and (since is None or _when(observation["startTime"]) >= since)
        ]
        data, meta = self._cursor_page(chosen, one)
        self._answer(200, {"data": [_field_groups(item, groups) for item in data], "meta": meta})

    def _answer_scores_v3(self) -> None:
        one = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        groups = set(one["fields"].split(",")) if "fields" in one else set()
        if int(one.get("limit", 50)) > 100 or groups - {"details", "subject", "annotation"}:
            self._answer(400, {"message": "invalid limit or fields"})
            return
        names = set(one["name"].split(",")) if "name" in one else None
        since = _when(one["fromTimestamp"]) if "fromTimestamp" in one else None
        chosen = [
            _score_v3(score, subject="subject" in groups)
            for score in self.server.owner.scores
            if (names is None or score.get("name") in names)
            and (since is None or _when(score["timestamp"]) >= since)
        ]
        data, meta = self._cursor_page(chosen, one)
        self._answer(200, {"data": data, "meta": {"limit": int(one.get("limit", 50)), **meta}})

    def _cursor_page(
        self, items: list[dict[str, Any]], query: dict[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """One page from the opaque ``cursor`` on; ``meta.cursor`` only when more remain."""
        start = json.loads(base64.b64decode(query["cursor"]))["offset"] if "cursor" in query else 0
        size = min(int(query.get("limit", 50)), self.server.owner.page_size)
        end = start + size
        more = (
            {"cursor": base64.b64encode(json.dumps({"offset": end}).encode()).decode()}
            if end < len(items)
            else {}
        )
        return items[start:end], more

    def _page(self, items: list[dict[str, Any]], time_field: str) -> dict[str, Any]:
        """Langfuse's paged list: ``data`` and ``meta`` (page from 1, totalPages)."""
        query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        since = _when(query["fromTimestamp"]) if "fromTimestamp" in query else None
        chosen = [
            item
            for item in items
            if ("name" not in query or item.get("name") == query["name"])
            and (since is None or _when(item[time_field]) >= since)
        ]
        size = min(int(query.get("limit", 50)), self.server.owner.page_size)
        page = int(query.get("page", 1))
        return {
            "data": chosen[(page - 1) * size : page * size],
            "meta": {
                "page": page,
                "limit": size,
                "totalItems": len(chosen),
                "totalPages": math.ceil(len(chosen) / size),
            },
        }

    def _answer_score(self, body: bytes) -> None:
        owner = self.server.owner
        if owner.scores_status != 200:
            self._answer(owner.scores_status, {"message": "the fake refuses scores"})
            return
        score = json.loads(body)
        score.setdefault("timestamp", datetime.now().astimezone().isoformat())
        owner._add_score(score)
        self._answer(200, {"id": score.get("id", "")})

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep test output quiet

    def _read_body(self) -> bytes:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _received(self, body: bytes) -> ReceivedRequest:
        headers = {key.lower(): value for key, value in self.headers.items()}
        return ReceivedRequest(method=self.command, path=self.path, headers=headers, body=body)

    def _answer_traces(self, body: bytes) -> None:
        if "json" in self.headers.get("Content-Type", ""):
            self.server.owner._add_spans(_spans_from_json(body))
            self._answer(200, {})
            return
        self.server.owner._add_spans(_spans_from_protobuf(body))
        self._send(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _RecordingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FakeLangfuseServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up before a slow answer is what the slow-host tests are about."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


LEGACY_LISTS = frozenset({"/api/public/traces", "/api/public/v2/scores"})
CURRENT_LISTS = frozenset({"/api/public/v2/observations", "/api/public/v3/scores"})
# Langfuse v4's observation field groups (fern observations.yml); core is always served.
FIELD_GROUPS = {
    "core": ("id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type"),
    "basic": ("name", "level", "environment", "isRootObservation"),
    "io": ("input", "output"),
    "metrics": ("latency",),
}


def _observations(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """A legacy-shaped trace as Langfuse v4 stores it: its root observation (the SDK's JSON text
    as input/output) and one model call under it."""
    started = _when(trace["timestamp"])
    latency = trace.get("latency") or 0.0
    ended = (started + timedelta(seconds=latency)).isoformat()
    root_id = trace["id"][:16]
    common = {
        "traceId": trace["id"],
        "projectId": PROJECT_ID,
        "level": "DEFAULT",
        "environment": trace.get("environment", "default"),
    }
    root = {
        **common,
        "id": root_id,
        "parentObservationId": None,
        "isRootObservation": True,
        "type": "AGENT",
        "name": trace["name"],
        "startTime": started.isoformat(),
        "endTime": ended,
        "input": _raw(trace.get("input")),
        "output": _raw(trace.get("output")),
        "latency": latency,
    }
    child = {
        **root,
        "id": trace["id"][16:],
        "parentObservationId": root_id,
        "isRootObservation": False,
        "type": "GENERATION",
        "name": "llm:fake",
        "input": _raw([{"role": "user", "content": trace.get("input")}]),
    }
    return [root, child]


def _raw(value: object) -> str | None:
    return None if value is None else json.dumps(value)


def _field_groups(observation: dict[str, Any], groups: set[str]) -> dict[str, Any]:
    return {key: observation[key] for group in groups & FIELD_GROUPS.keys() for key in FIELD_GROUPS[group]}


def _score_v3(score: dict[str, Any], *, subject: bool) -> dict[str, Any]:
    """A kept (v1/v2-shaped) score as ``/v3/scores`` serves it."""
    shaped = {
        "id": score.get("id", ""),
        "projectId": PROJECT_ID,
        "name": score["name"],
        "value": score.get("value"),
        "dataType": score.get("dataType", "NUMERIC"),
        "source": "API",
        "timestamp": score["timestamp"],
        "environment": score.get("environment", "default"),
        "createdAt": score["timestamp"],
        "updatedAt": score["timestamp"],
    }
    if subject and score.get("observationId"):
        shaped["subject"] = {"kind": "observation", "id": score["observationId"], "traceId": score["traceId"]}
    elif subject:
        shaped["subject"] = {"kind": "trace", "id": score["traceId"]}
    return shaped


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeLangfuseServer:
    """Records what a Langfuse SDK sends; thread-safe; use as a context manager.

    ``response_delay`` (seconds) holds every POST answer back: a slow Langfuse. ``traces``
    and ``scores`` are what the public API's lists serve (set them before the requests);
    ``posted_scores`` every score POSTed and kept, in order.
    """

    def __init__(self, *, response_delay: float = 0.0, page_size: int = 100) -> None:
        self.response_delay = response_delay
        self.page_size = page_size
        self.scores_status = 200
        self.current_api = True  # False: a Langfuse without the v4 read endpoints
        self.legacy_api = True  # False: a Langfuse without the deprecated ones
        self.get_status: dict[str, int] = {}
        self.traces: list[dict[str, Any]] = []
        self.scores: list[dict[str, Any]] = []
        self.posted_scores: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._spans: list[ReceivedSpan] = []
        self._http = _RecordingHTTPServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-langfuse", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def spans_of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.trace_id == trace_id]

    def wait_for_spans(self, count: int, timeout: float = 5.0) -> list[ReceivedSpan]:
        """Poll until at least ``count`` spans arrived (or ``timeout``); returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.spans

    def start(self) -> FakeLangfuseServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLangfuseServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _add_score(self, score: dict[str, Any]) -> None:
        with self._lock:
            self.posted_scores.append(score)
            self.scores[:] = [kept for kept in self.scores if kept.get("id") != score.get("id")]
            self.scores.append(score)

    def _add_spans(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)
