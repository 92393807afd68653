"""``GET /metrics``: the Prometheus exposition, plus scrape-time collectors.

- no auth, not in the OpenAPI schema, never rate limited (scrapers must always get in);
- single process: the app's own registry, with process and GC metrics;
- several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set before start): the values
  every worker wrote to that directory, merged by ``MultiProcessCollector``;
- ``parley_db_pool_*`` are read from the connection pool at scrape time; in multiprocess
  mode they describe the worker that answered the scrape;
- ``parley_db_up`` is 1 when the database answered a check made for this scrape (the
  ``/health`` probe, on a connection of its own, bounded in time), else 0;
- ``parley_build_info{version, python}`` is always 1.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request, Response
from loguru import logger
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

METRICS_PATH = "/metrics"
_MULTIPROCESS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A snapshot of the database connection pool."""

    size: int  # configured steady size
    checked_out: int  # connections lent to requests right now
    idle: int  # open connections waiting in the pool
    overflow: int  # connections open beyond ``size``
    max_overflow: int = 0  # configured ceiling of ``overflow``: at most size + max_overflow lent out


PoolReader = Callable[[], PoolUsage | None]
DatabaseCheck = Callable[[], Awaitable[bool]]
"""True when the database answers; False when it does not (never raises, bounded in time)."""


def multiprocess_dir() -> str | None:
    """The shared directory when prometheus-client runs in multiprocess mode, else None.

    prometheus-client decides this from the environment when it is first imported, so
    the variable must be set before the server starts, as the README says.
    """
    for name in _MULTIPROCESS_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


class DatabasePoolCollector(Collector):
    """``parley_db_pool_{size,checked_out,idle,overflow,max_overflow}`` read through ``read_pool``
    per scrape. The pool is exhausted when ``checked_out`` reaches ``size + max_overflow``."""

    def __init__(self, read_pool: PoolReader) -> None:
        self._read_pool = read_pool

    def collect(self) -> Iterable[Metric]:
        try:
            usage = self._read_pool()
        except Exception as exc:  # a scrape must still answer when the pool cannot be read
            logger.warning("Metrics: database pool unreadable ({})", type(exc).__name__)
            return []
        if usage is None:
            return []
        return [
            GaugeMetricFamily("parley_db_pool_size", "Configured pool size", value=usage.size),
            GaugeMetricFamily("parley_db_pool_checked_out", "Connections lent out", value=usage.checked_out),
            GaugeMetricFamily(
                "parley_db_pool_idle", "Open connections waiting in the pool", value=usage.idle
            ),
            GaugeMetricFamily("parley_db_pool_overflow", "Connections beyond the size", value=usage.overflow),
            GaugeMetricFamily(
                "parley_db_pool_max_overflow",
                "Most connections allowed beyond the size",
                value=usage.max_overflow,
            ),
        ]


class DatabaseUpCollector(Collector):
    """``parley_db_up``: the outcome of the last database check (nothing before the first)."""

    def __init__(self) -> None:
        self.up: bool | None = None

    def collect(self) -> Iterable[Metric]:
        if self.up is None:
            return []
        return [
            GaugeMetricFamily(
                "parley_db_up", "1 when the database answered the scrape's check", value=self.up
            )
        ]


class BuildInfoCollector(Collector):
    """``parley_build_info{version, python} 1`` (a collector, so it works in every mode)."""

    def __init__(self, version: str) -> None:
        self._labels = {"version": version, "python": platform.python_version()}

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("parley_build_info", "Parley build", labels=list(self._labels))
        info.add_metric(list(self._labels.values()), 1)
        return [info]


class MetricsExposition:
    """What ``/metrics`` renders: ``registry`` plus ``collectors`` (merged across workers
    when ``shared_dir`` is given)."""

    def __init__(
        self, registry: CollectorRegistry, collectors: Sequence[Collector], shared_dir: str | None
    ) -> None:
        if shared_dir is None:
            ProcessCollector(registry=registry)
            GCCollector(registry=registry)
            self.registry = registry
        else:
            # The app's registry holds only this worker's values; the directory holds all.
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=shared_dir)  # type: ignore[no-untyped-call]
        for collector in collectors:
            self.registry.register(collector)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The body and content type for a scraper's ``Accept`` header (OpenMetrics or text)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def metrics_router(
    exposition: MetricsExposition, check_database: DatabaseCheck, database: DatabaseUpCollector
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(METRICS_PATH, include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Checked per scrape, so an alert on parley_db_up needs no other traffic to see an outage.
        database.up = await check_database()
        body, content_type = exposition.render(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    return router


def install_metrics(
    app: FastAPI,
    *,
    registry: CollectorRegistry,
    read_pool: PoolReader,
    check_database: DatabaseCheck,
    version: str,
) -> None:
    """Expose ``GET /metrics``: what ``registry`` holds (the HTTP families of
    :meth:`HttpMetrics.register` among them), plus the build info, the pool and whether the
    database answers, checked per scrape."""
    database = DatabaseUpCollector()
    collectors = [BuildInfoCollector(version), DatabasePoolCollector(read_pool), database]
    exposition = MetricsExposition(registry, collectors, multiprocess_dir())
    app.include_router(metrics_router(exposition, check_database, database))


def release_process_gauges() -> None:
    """In multiprocess mode, drop this process's live gauges (call when the worker stops),
    so in-flight requests and active streams of a dead worker stop counting."""
    if multiprocess_dir() is not None:
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
