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
from datetime import datetime
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
        elif urlsplit(self.path).path == "/api/public/traces":
            self._answer(200, self._page(owner.traces, "timestamp"))
        elif urlsplit(self.path).path == "/api/public/v2/scores":
            self._answer(200, self._page(owner.scores, "timestamp"))
        else:
            self._answer(200, {})

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
