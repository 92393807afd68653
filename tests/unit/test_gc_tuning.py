"""The serving process's garbage-collector settings."""

from __future__ import annotations

import gc

import pytest

from parley.gc_tuning import SERVING_THRESHOLDS, tune_for_serving


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_what_exists_and_raises_the_thresholds() -> None:
    gc.unfreeze()
    built_at_start_up: list[int] = [1]
    assert any(o is built_at_start_up for o in gc.get_objects())

    tune_for_serving()

    assert gc.get_threshold() == SERVING_THRESHOLDS
    assert not any(o is built_at_start_up for o in gc.get_objects())  # frozen: the collector skips it
    assert SERVING_THRESHOLDS > (700, 10, 10)  # above CPython's defaults
