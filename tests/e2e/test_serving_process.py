"""What ``parley serve``'s app does to its process that a test app must not."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from parley.gc_tuning import SERVING_THRESHOLDS
from parley.main import create_app
from tests.e2e.conftest import make_settings


@pytest.mark.usefixtures("restored_gc")
@pytest.mark.parametrize("serving", [True, False])
async def test_only_the_served_app_tunes_the_garbage_collector_once_started(
    serving: bool, e2e_database_url: str, tmp_path: Path
) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    app = create_app(make_settings(e2e_database_url, tmp_path), serving=serving)
    assert gc.get_threshold() == (700, 10, 10)  # nothing happens before start-up

    async with app.router.lifespan_context(app):
        tuned = gc.get_threshold() == SERVING_THRESHOLDS and gc.get_freeze_count() > 0

    assert tuned is serving
