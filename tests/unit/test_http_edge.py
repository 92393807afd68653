"""The HTTP edge's typed surface and what the composition root gives it."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from parley.adapters.inbound.http.edge import Services
from parley.config import Settings
from parley.container import Container

pytestmark = pytest.mark.unit


def _service_names() -> list[str]:
    return [name for name, member in inspect.getmembers(Services) if isinstance(member, property)]


def test_the_container_provides_every_service_the_http_edge_names(tmp_path: Path) -> None:
    container = Container(
        settings=Settings(_env_file=None, data_dir=tmp_path, auth={"jwt_secret_key": "k" * 40})
    )

    missing = [name for name in _service_names() if not callable(getattr(container, name, None))]

    assert len(_service_names()) >= 19
    assert missing == []
