"""What the model is shown: the system prompt plus as much recent history as fits.

Rules:
- the system prompt is always first and always kept;
- older history is dropped first (``trim_messages``, ``strategy="last"``) until the
  approximate token count (``count_tokens_approximately``, no tokenizer download)
  fits ``budget``; the kept history starts on a user message, so a tool result
  never loses the tool call it answers;
- the current turn (the newest user message and what followed it) is never
  dropped, even when it alone exceeds the budget: answering without the question
  would be worse than an oversized request;
- tool calls left unanswered by an interrupted turn are removed, because
  OpenAI-compatible servers reject a tool call without its result;
- the user's recalled long-term memories are part of the system prompt
  (:func:`with_memories`), so they count within the budget.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages

MEMORIES_HEADING = "What you remember about the user from earlier conversations (facts they stated):"


def with_memories(system_prompt: str, memories: Sequence[str]) -> str:
    """The system prompt followed by the user's recalled facts, one per line (unchanged without)."""
    if not memories:
        return system_prompt
    return "\n".join([system_prompt, "", MEMORIES_HEADING, *(f"- {fact}" for fact in memories)])


def build_context(system_prompt: str, history: Sequence[BaseMessage], budget: int) -> list[BaseMessage]:
    """The messages to send to the model for the next call (see the module rules)."""
    system = SystemMessage(content=system_prompt)
    valid = drop_unanswered_tool_calls(history)
    trimmed = trim_messages(
        [system, *valid],
        max_tokens=budget,
        token_counter=count_tokens_approximately,
        strategy="last",
        include_system=True,
        start_on="human",
        allow_partial=False,
    )
    if any(isinstance(m, HumanMessage) for m in trimmed) or not valid:
        return trimmed
    return [system, *_current_turn(valid)]


def _current_turn(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The newest user message and everything after it."""
    for index in range(len(history) - 1, -1, -1):
        if isinstance(history[index], HumanMessage):
            return list(history[index:])
    return list(history)


def drop_unanswered_tool_calls(history: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Remove tool calls that have no result right after them (and results with no call).

    An AI message whose calls are not all answered by the tool messages that follow
    it keeps its text, if any, without the calls; an AI message left empty is dropped.
    """
    kept: list[BaseMessage] = []
    open_calls: set[str] = set()
    for index, message in enumerate(history):
        if isinstance(message, ToolMessage):
            if message.tool_call_id in open_calls:
                kept.append(message)
            continue
        open_calls = set()
        if isinstance(message, AIMessage) and message.tool_calls:
            wanted = {call.get("id") or "" for call in message.tool_calls}
            if wanted <= _results_after(history, index):
                open_calls = wanted
                kept.append(message)
            elif message.text:
                kept.append(AIMessage(content=message.content, id=message.id))
        else:
            kept.append(message)
    return kept


def _results_after(history: Sequence[BaseMessage], index: int) -> set[str]:
    """The tool-call ids answered by the run of tool messages following ``history[index]``."""
    answered: set[str] = set()
    for message in history[index + 1 :]:
        if not isinstance(message, ToolMessage):
            break
        answered.add(message.tool_call_id)
    return answered
