"""Calling the ASGI app by hand, for what an HTTP client cannot do: leave mid-body, stall, or
stop listening at a chosen moment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def post_scope(
    path: str, *, content_type: str = "application/json", headers: Iterable[tuple[bytes, bytes]] = ()
) -> dict[str, Any]:
    """The scope of a POST to ``path`` from 127.0.0.1 (no Content-Length unless given in ``headers``:
    the body then arrives in chunks, as a slow upload's would)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode()), *headers],
        "client": ("127.0.0.1", 5555),
        "server": ("testserver", 80),
    }
