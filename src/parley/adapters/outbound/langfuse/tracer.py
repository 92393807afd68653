"""``Tracer`` adapter that sends chat turns to Langfuse (SDK v5, OpenTelemetry based).

Contract (from the port): no method raises into the caller, and none waits on
the network. Observations go to the SDK's batch span processor, whose worker
thread exports them; ``aclose()`` flushes in a worker thread, bounded by
``flush_timeout``. Failures are logged at warning level with the exception type
only (never message bodies or keys). Nothing is fetched at construction.
"""

from __future__ import annotations

import asyncio

from langfuse import Langfuse, LangfuseOtelSpanAttributes
from langfuse import __version__ as langfuse_version
from langfuse._client.constants import LANGFUSE_TRACER_NAME
from langfuse._client.resource_manager import LangfuseResourceManager
from loguru import logger
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import TracerProvider

from parley.adapters.outbound.langfuse.noop import NoopTurnTrace
from parley.adapters.outbound.langfuse.turn import TRACE_NAME, LangfuseTurnTrace
from parley.ports.tracing import TurnStarted


class LangfuseTracer:
    """``Tracer`` backed by a Langfuse client of its own.

    - ``host`` is always explicit: the SDK would otherwise fall back to Langfuse Cloud.
    - The client gets its own ``TracerProvider``: it does not install itself as the
      process-wide OpenTelemetry provider, nor export other libraries' spans.
    - The SDK keeps one client state per public key per process. A second tracer
      opened with the key of an open one shares that one's state (host, settings)
      and, on ``aclose()``, only flushes it; ``aclose()`` of the owner releases the
      state so a later tracer with the same key starts afresh.
    - Construction never raises: when the SDK cannot be set up, or a key or the
      host is empty, the tracer logs a warning and drops everything.
    - ``capture_content=False`` keeps prompts, replies and tool payloads out of
      Langfuse (models, usage, timings, levels and sizes are still sent).
    - ``request_timeout`` bounds each export request (whole seconds, as the SDK takes).
    """

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        host: str,
        *,
        release: str | None = None,
        environment: str | None = None,
        flush_timeout: float = 5.0,
        capture_content: bool = True,
        request_timeout: int = 5,
    ) -> None:
        self._public_key = public_key
        self._host = host.rstrip("/")
        self._flush_timeout = flush_timeout
        self._capture_content = capture_content
        self._client: Langfuse | None = None
        self._provider: TracerProvider | None = None
        self._tracer: otel_trace.Tracer | None = None
        self._owns_client_state = False
        if not (public_key and secret_key and host):
            logger.warning("Langfuse tracing disabled: public key, secret key and host are all required")
            return
        try:
            self._connect(secret_key, host, release, environment, request_timeout)
        except Exception as exc:
            logger.warning("Langfuse tracing disabled: client setup failed ({})", type(exc).__name__)
            self._client = self._provider = self._tracer = None

    def _connect(
        self, secret_key: str, host: str, release: str | None, environment: str | None, request_timeout: int
    ) -> None:
        # shutdown_on_exit=False: the SDK's own exit hook flushes this provider and
        # aclose() shuts it down; another exit hook would only add log noise.
        own_provider = TracerProvider(shutdown_on_exit=False)
        self._client = Langfuse(
            public_key=self._public_key,
            secret_key=secret_key,
            base_url=host.rstrip("/"),  # base_url wins over the LANGFUSE_BASE_URL variable
            release=release,
            environment=environment,
            timeout=max(1, request_timeout),
            tracer_provider=own_provider,
        )
        self._provider = _provider_in_use(self._public_key) or own_provider
        self._owns_client_state = self._provider is own_provider
        if not self._owns_client_state:
            logger.warning("Langfuse tracing: a client with this public key is already open; sharing it")
        # The scope name and public-key attribute are what the SDK's span processor
        # accepts as its own (it drops other scopes and other projects' spans).
        self._tracer = self._provider.get_tracer(
            LANGFUSE_TRACER_NAME, langfuse_version, attributes={"public_key": self._public_key}
        )

    def start_turn(self, started: TurnStarted) -> LangfuseTurnTrace | NoopTurnTrace:
        """Open a trace for one turn; a do-nothing turn when tracing is off or fails."""
        if self._client is None or self._tracer is None:
            return NoopTurnTrace()
        try:
            return LangfuseTurnTrace(
                client=self._client,
                tracer=self._tracer,
                trace_attributes={
                    LangfuseOtelSpanAttributes.TRACE_USER_ID: str(started.user_id),
                    LangfuseOtelSpanAttributes.TRACE_SESSION_ID: str(started.conversation_id),
                    LangfuseOtelSpanAttributes.TRACE_NAME: TRACE_NAME,
                },
                capture_content=self._capture_content,
                started=started,
                host=self._host,
            )
        except Exception as exc:
            logger.warning("Langfuse tracing: start_turn failed ({})", type(exc).__name__)
            return NoopTurnTrace()

    async def aclose(self) -> None:
        """Flush (at most ``flush_timeout`` seconds, off the event loop) and shut down.

        Idempotent; turns started afterwards are dropped. Whatever is not delivered
        in time is dropped too (the export thread gives up on its own shortly after).
        """
        client, provider = self._client, self._provider
        self._client = self._provider = self._tracer = None
        if client is None or provider is None:
            return
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._shutdown, client, provider), timeout=self._flush_timeout
            )
        except TimeoutError:
            logger.warning("Langfuse tracing: flush not done in {}s; rest dropped", self._flush_timeout)
        except Exception as exc:
            logger.warning("Langfuse tracing: shutdown failed ({})", type(exc).__name__)

    def _shutdown(self, client: Langfuse, provider: TracerProvider) -> None:
        """Blocking part of ``aclose()``; runs in a worker thread."""
        provider.force_flush(timeout_millis=int(self._flush_timeout * 1000))
        if not self._owns_client_state:
            return
        client.shutdown()  # stops the SDK's score and media threads
        provider.shutdown()  # stops the span export thread
        # The SDK never forgets a public key's state: a later client with the same
        # key would get this shut-down one.
        _client_states().pop(self._public_key, None)


def _client_states() -> dict[str, object]:
    """The SDK's client state per public key (a private SDK attribute, read defensively;
    entry 8 of ``docs/upstream-overrides.md``)."""
    states = getattr(LangfuseResourceManager, "_instances", None)
    return states if isinstance(states, dict) else {}


def _provider_in_use(public_key: str) -> TracerProvider | None:
    """The tracer provider the SDK's state for ``public_key`` exports from, if known."""
    provider = getattr(_client_states().get(public_key), "tracer_provider", None)
    return provider if isinstance(provider, TracerProvider) else None
