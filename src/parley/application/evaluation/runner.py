"""Running cases through the agent and scoring them: :class:`EvaluationRunner`.

Each case is a fresh conversation of the agent (its own id, forgotten afterwards); its turns
run in order, each bounded by the per-request timeout. A case whose turn fails (the agent's
error, or the timeout) is run again from its first turn, in a new conversation, up to
``retries`` more times; then it is recorded as failed. Its metrics are then judged at once,
each judge request bounded by the same timeout and retried when it times out (the judge
retries its own malformed answers); a metric that still has no verdict is recorded as an
error for that case. Nothing a case does stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from parley.application.chat.observer import TurnObserver
from parley.application.evaluation.cases import Case, Metric
from parley.domain.chat import MessageStatus
from parley.ports.agent import AgentError, AgentEvent, AgentTurn, ChatAgent, TokenDelta, ToolCall, Usage
from parley.ports.judge import Exchange, Judge, JudgeError, JudgeRequest
from parley.ports.system import Clock
from parley.ports.tracing import TraceLink, Tracer, TurnStarted

# The agent's memory is keyed by conversation and user; evaluation conversations belong to no one.
EVALUATION_USER = UUID(int=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerLimits:
    """``concurrency``: cases at once; ``timeout``: seconds per agent turn or judge request;
    ``retries``: further attempts after a failure (a case from its first turn)."""

    concurrency: int = 4
    timeout: float = 60.0
    retries: int = 2

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.timeout <= 0 or self.retries < 0:
            raise ValueError("concurrency >= 1, timeout > 0 and retries >= 0")


@dataclass(frozen=True, slots=True)
class ToolUse:
    name: str
    arguments: dict[str, object]
    result: str


@dataclass(slots=True)
class TurnResult:
    """One turn as the agent answered it. ``latency``: seconds from sending to the end of the
    reply; ``time_to_first_token``: to its first text (None when it had none)."""

    user: str
    reply: str = ""
    latency: float = 0.0
    time_to_first_token: float | None = None
    tool_calls: list[ToolUse] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    models: list[str] = field(default_factory=list)
    trace: TraceLink | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    """A metric's verdict on a case: a score and its reason, or the error that left it unscored."""

    metric: str
    score: float | None
    reason: str
    error: str | None = None
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class CaseResult:
    """Everything measured on one case. ``error`` set: the agent failed it (after retries),
    and no metric was judged."""

    case: Case
    turns: list[TurnResult] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    metrics: dict[str, MetricResult] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.error is None

    @property
    def reply(self) -> str:
        return self.turns[-1].reply if self.turns else ""

    @property
    def tool_names(self) -> list[str]:
        return [call.name for turn in self.turns for call in turn.tool_calls]

    @property
    def tool_as_expected(self) -> bool | None:
        """Whether the expected tool was called (None: the case expects none)."""
        if self.case.expected_tool is None:
            return None
        return self.case.expected_tool in self.tool_names

    @property
    def latency(self) -> float:
        return sum(turn.latency for turn in self.turns)

    @property
    def trace(self) -> TraceLink | None:
        """The trace of the judged (last) turn, where its scores belong; None untraced."""
        return self.turns[-1].trace if self.turns else None

    @property
    def prompt_tokens(self) -> int:
        return sum(turn.prompt_tokens for turn in self.turns)

    @property
    def completion_tokens(self) -> int:
        return sum(turn.completion_tokens for turn in self.turns)


class _TurnRecorder:
    """The event sink of one turn: collects the reply, tools, usage and the first token's time."""

    def __init__(self, turn: TurnResult, started: float) -> None:
        self._turn, self._started, self._parts = turn, started, list[str]()

    def __call__(self, event: AgentEvent) -> None:
        turn = self._turn
        if isinstance(event, TokenDelta):
            if turn.time_to_first_token is None and event.text:
                turn.time_to_first_token = time.perf_counter() - self._started
            self._parts.append(event.text)
        elif isinstance(event, ToolCall):
            turn.tool_calls.append(ToolUse(event.name, dict(event.arguments), event.result))
        elif isinstance(event, Usage):
            turn.prompt_tokens += event.prompt_tokens
            turn.completion_tokens += event.completion_tokens
            if event.model not in turn.models:
                turn.models.append(event.model)

    def finish(self) -> None:
        self._turn.reply = "".join(self._parts)
        self._turn.latency = time.perf_counter() - self._started


@dataclass(frozen=True, slots=True)
class TurnTracing:
    """Trace each evaluated turn as production turns are (the same :class:`TurnObserver`), so a
    case's turns can be found, and scored, in the tracing backend."""

    tracer: Tracer
    clock: Clock


class EvaluationRunner:
    """Runs cases through ``agent`` and scores them with ``judge`` (see the module docstring).

    With ``tracing``, every turn is traced like a production turn and its link kept in
    :attr:`TurnResult.trace`; a failed or timed-out turn's trace ends as ``failed``.
    """

    def __init__(
        self,
        agent: ChatAgent,
        judge: Judge,
        limits: RunnerLimits | None = None,
        tracing: TurnTracing | None = None,
    ) -> None:
        self._agent, self._judge = agent, judge
        self._limits = limits or RunnerLimits()
        self._tracing = tracing

    async def run(
        self,
        cases: Sequence[Case],
        metrics: Sequence[Metric],
        on_case_done: Callable[[CaseResult], None] = lambda _: None,
    ) -> list[CaseResult]:
        """Every case's result, in the order of ``cases``; ``on_case_done`` is told of each as it ends."""
        gate = asyncio.Semaphore(self._limits.concurrency)

        async def one(case: Case) -> CaseResult:
            async with gate:
                result = await self.run_case(case, metrics)
            on_case_done(result)
            return result

        return list(await asyncio.gather(*(one(case) for case in cases)))

    async def run_case(self, case: Case, metrics: Sequence[Metric]) -> CaseResult:
        result = CaseResult(case)
        for attempt in range(1, self._limits.retries + 2):
            result.attempts = attempt
            try:
                result.turns = await self._converse(case)
            except (AgentError, TimeoutError) as failure:
                result.error = _describe(failure)
                continue
            except Exception as failure:  # the run goes on whatever one case does
                result.error = _describe(failure)
                break
            result.error = None
            break
        if result.succeeded:
            await self.judge(result, metrics)
        return result

    async def judge(self, result: CaseResult, metrics: Sequence[Metric]) -> None:
        """Judge ``result``'s last exchange on each metric that applies to its case, at once,
        into ``result.metrics`` (a metric without a verdict is recorded with its error)."""
        judged = [metric for metric in metrics if metric.applies_to(result.case)]
        verdicts = await asyncio.gather(*(self._judged(result, metric) for metric in judged))
        result.metrics.update({verdict.metric: verdict for verdict in verdicts})

    async def _converse(self, case: Case) -> list[TurnResult]:
        conversation = uuid4()
        turns: list[TurnResult] = []
        try:
            for content in case.turns:
                turn = TurnResult(user=content)
                await self._turn(AgentTurn(conversation, EVALUATION_USER, content), turn)
                turns.append(turn)
        finally:
            await _forget_quietly(self._agent, conversation)
        return turns

    async def _turn(self, agent_turn: AgentTurn, turn: TurnResult) -> None:
        """One agent turn into ``turn``, bounded by the timeout; traced when tracing is on."""
        recorder = _TurnRecorder(turn, time.perf_counter())
        if self._tracing is None:
            async with asyncio.timeout(self._limits.timeout):
                await self._agent.run(agent_turn, recorder)
            recorder.finish()
            return
        clock = self._tracing.clock
        started = TurnStarted(
            user_id=agent_turn.user_id,
            conversation_id=agent_turn.conversation_id,
            input_text=agent_turn.content,
            streaming=agent_turn.stream_tokens,
            at=clock.now(),
        )
        observer = TurnObserver(self._tracing.tracer, clock, started)
        turn.trace = observer.link

        def both(event: AgentEvent) -> None:
            recorder(event)
            observer.saw(event)

        status = MessageStatus.FAILED
        try:
            async with asyncio.timeout(self._limits.timeout):
                await self._agent.run(agent_turn, both)
            status = MessageStatus.COMPLETE
        except Exception as failure:
            observer.failed(failure)
            raise
        finally:
            recorder.finish()
            observer.ended(status, clock.now())

    async def _judged(self, result: CaseResult, metric: Metric) -> MetricResult:
        request = JudgeRequest(
            metric=metric.name,
            instructions=metric.instructions,
            conversation=tuple(Exchange(turn.user, turn.reply) for turn in result.turns),
            tool_results=tuple(
                f"{call.name}({call.arguments}) -> {call.result}" for call in result.turns[-1].tool_calls
            ),
            reference=result.case.reference,
        )
        error = "no attempt"
        for attempt in range(1, self._limits.retries + 2):
            try:
                async with asyncio.timeout(self._limits.timeout):
                    verdict = await self._judge.score(request)
            except TimeoutError:
                error = f"the judge did not answer within {self._limits.timeout:g} s"
                continue
            except JudgeError as failure:
                return MetricResult(
                    metric.name, None, "", error=str(failure) or "no verdict", attempts=attempt
                )
            except Exception as failure:
                return MetricResult(metric.name, None, "", error=_describe(failure), attempts=attempt)
            return MetricResult(
                metric.name,
                verdict.score,
                verdict.reason,
                attempts=verdict.attempts,
                prompt_tokens=verdict.prompt_tokens,
                completion_tokens=verdict.completion_tokens,
            )
        return MetricResult(metric.name, None, "", error=error, attempts=self._limits.retries + 1)


async def _forget_quietly(agent: ChatAgent, conversation: UUID) -> None:
    """Evaluation conversations are not kept; failing to forget one must not fail the case."""
    with contextlib.suppress(Exception):
        await agent.forget(conversation)


def _describe(failure: BaseException) -> str:
    if isinstance(failure, TimeoutError) and not str(failure):
        return "TimeoutError: the turn exceeded the per-request timeout"
    return f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
