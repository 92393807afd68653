"""The :class:`~parley.ports.memory.FactExtractor` port: the configured chat model, or offline.

- :class:`ModelFactExtractor`: one small non-streamed call to the chat model (no tools, a strict
  prompt asking for a JSON array of short statements); an answer that is not one means no facts;
- :class:`OfflineFactExtractor`: deterministic, used with the offline model: simple stated facts
  ("my name is ...", "I prefer ...", "I live in ...") found by patterns, sentence by sentence
  (questions are skipped), and restated in the third person.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from parley.adapters.outbound.langgraph.chat_model import ModelConfig, build_chat_model, close_chat_model

FACTS_PROMPT = (
    "You keep a long-term memory of facts about the user. From the user's messages below, list the "
    "durable facts the user states about themselves (name, preferences, where they live, work, "
    "family, goals). Reply with a JSON array of short third-person statements, such as "
    '["The user\'s name is Ada", "The user prefers tea"], or [] when there are none. Nothing else.'
)
FACTS_MAX_TOKENS = 200
_EXCERPT_CHARS = 4000  # of the user's messages: enough for stated facts, cheap to send
_SENTENCES = re.compile(r"[^.!?\n]+[.!?]*")
_VALUE = r"(?P<value>[^,;:()]{1,80}?)\s*(?:,|;|$|\bbut\b|\band I\b)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + _VALUE, re.IGNORECASE), template)
    for pattern, template in (
        (r"\bmy name is\s+", "The user's name is {}"),
        (r"\b(?:call me|I'm called|I am called)\s+", "The user wants to be called {}"),
        (r"\bmy favou?rite\s+(?P<what>\w+(?:\s\w+)?)\s+is\s+", "The user's favourite {what} is {}"),
        (r"\bI (?:really )?prefer\s+", "The user prefers {}"),
        (r"\bI (?:really )?(?:like|love|enjoy)\s+", "The user likes {}"),
        (r"\bI (?:really )?(?:dislike|hate|don't like|do not like)\s+", "The user dislikes {}"),
        (r"\bI (?:live|am based) in\s+", "The user lives in {}"),
        (r"\bI work as\s+", "The user works as {}"),
        (r"\bI work (?:at|for)\s+", "The user works at {}"),
        (r"\bI(?:'m| am) (?:a|an)\s+", "The user is a {}"),
        (r"\bI(?:'m| am) allergic to\s+", "The user is allergic to {}"),
    )
)


class OfflineFactExtractor:
    """Stated facts found by patterns (see the module docstring)."""

    async def extract(self, messages: Sequence[str]) -> list[str]:
        return [fact for message in messages for fact in _stated(message)]


def _stated(message: str) -> list[str]:
    facts: list[str] = []
    for sentence in _SENTENCES.findall(message):
        if sentence.rstrip().endswith("?"):
            continue  # "do I like jazz?" states nothing
        text = sentence.strip().rstrip(".!")
        for pattern, template in _PATTERNS:
            for match in pattern.finditer(text):
                value = match.group("value").strip()
                what = match.groupdict().get("what") or ""
                if value:
                    facts.append(template.replace("{what}", what.lower()).format(value))
    return facts


class ModelFactExtractor:
    """Asks ``model`` (a chat model without tools) for the facts; :meth:`aclose` releases it."""

    def __init__(self, model: BaseChatModel) -> None:
        self._model = model

    async def extract(self, messages: Sequence[str]) -> list[str]:
        said = "\n\n".join(messages)[-_EXCERPT_CHARS:]  # the newest, when they are long
        answer = await self._model.ainvoke([SystemMessage(FACTS_PROMPT), HumanMessage(said)])
        return parse_facts(answer.text)

    async def aclose(self) -> None:
        await close_chat_model(self._model)


def parse_facts(answer: str) -> list[str]:
    """The strings of the JSON array in ``answer`` (code fences and words around it are ignored);
    [] when there is no such array."""
    start, end = answer.find("["), answer.rfind("]")
    if start < 0 or end < start:
        return []
    try:
        parsed = json.loads(answer[start : end + 1])
    except ValueError:
        return []
    if not isinstance(parsed, list):
        return []
    return [item for item in parsed if isinstance(item, str)]


def build_fact_extractor(config: ModelConfig) -> ModelFactExtractor | OfflineFactExtractor:
    """The offline extractor with the offline model; else the chat model, asked for a few tokens."""
    if config.is_offline:
        return OfflineFactExtractor()
    return ModelFactExtractor(build_chat_model(replace(config, temperature=0.0, max_tokens=FACTS_MAX_TOKENS)))
