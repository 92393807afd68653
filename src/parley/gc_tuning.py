"""Garbage-collector settings for a serving process (``parley serve``), applied after start-up.

CPython's default thresholds (700, 10, 10) make a busy server spend much of its time in
the cyclic collector: with 1,000 concurrent chat streams, 22 full collections took 7.6 s
of a 25 s run (the heap holds every in-flight request and every module loaded at start-up,
and a full collection walks all of it). Two well-known remedies, measured together on
``uv run just bench slow``: GC time 8.8 s -> 1.4 s, the whole run 25 s -> 18 s.

- :func:`gc.freeze` after start-up: the modules, schemas, compiled graph and pools built
  at start-up live as long as the process, so the collector stops walking them;
- higher thresholds: fewer young collections (most request objects die by reference
  counting before one runs) and full collections only every ``100 x 20`` young-generation
  collections instead of ``10 x 10``.

Reference counting still frees almost everything at once; only reference cycles wait a
little longer. The test suite does not use this (its processes keep the defaults).
"""

from __future__ import annotations

import gc

SERVING_THRESHOLDS = (50_000, 20, 100)


def tune_for_serving(thresholds: tuple[int, int, int] = SERVING_THRESHOLDS) -> None:
    """Collect start-up garbage, freeze what survives, then raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
