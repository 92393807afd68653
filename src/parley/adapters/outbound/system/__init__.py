"""System adapters: the wall clock and random identifiers."""

from parley.adapters.outbound.system.clock import SystemClock
from parley.adapters.outbound.system.ids import Uuid4Generator

__all__ = ["SystemClock", "Uuid4Generator"]
