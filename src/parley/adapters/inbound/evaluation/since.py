"""``--since`` of ``parley eval traces``: a look-back window such as ``30m``, ``24h`` or ``7d``."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_WINDOW = re.compile(r"(\d{1,6})([mhd])")


class BadWindow(ValueError):
    """Not a window (the message shows the accepted forms)."""


def parse_window(text: str) -> timedelta:
    """``<N>m`` minutes, ``<N>h`` hours or ``<N>d`` days, N a positive whole number."""
    match = _WINDOW.fullmatch(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise BadWindow(
            f"--since {text!r}: expected a positive number of minutes, hours or days: 30m, 24h, 7d"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def since(text: str, now: datetime) -> datetime:
    """The moment ``text`` before ``now``."""
    return now - parse_window(text)
