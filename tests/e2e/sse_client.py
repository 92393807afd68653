"""Parse a ``text/event-stream`` body into ``(event, data)`` pairs, strictly as API.md frames it."""

from __future__ import annotations

import json
from typing import Any


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Each event is one ``event:`` line followed by one ``data:`` line of JSON; comments skipped."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2, f"unexpected frame: {block!r}"
        name, data = lines
        assert name.startswith("event: "), block
        assert data.startswith("data: "), block
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events
