"""Judge outbound adapters (the :class:`~parley.ports.judge.Judge` port): an LLM judge on any
OpenAI-compatible server, and an offline heuristic judge that is not a language model.

The LLM judge's module imports the openai SDK: import it only when it is used.
"""

from parley.adapters.outbound.judge.heuristic import HEURISTIC_JUDGE_NAME, HeuristicJudge

__all__ = ["HEURISTIC_JUDGE_NAME", "HeuristicJudge"]
