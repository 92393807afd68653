"""Model providers: what a ``provider:model`` string names, and whether its package is installed.

``LLM_MODEL`` and ``LLM_FALLBACK_MODELS`` take LangChain's ``init_chat_model`` strings:
``anthropic:claude-3-5-haiku-latest``, ``ollama:llama3.1``. The prefix is a provider only when it
is one of :data:`PROVIDERS`; any other string is an OpenAI model name, whole, as before:
``gpt-4o-mini``, a fine-tune (``ft:gpt-4o-mini:org::id``) or a model of an OpenAI-compatible
server (``llama3:8b`` with ``LLM_BASE_URL``). ``openai:`` names the OpenAI path explicitly.

The OpenAI path is Parley's own ``LeanChatOpenAI`` (the measured fast path, see
``docs/upstream-overrides.md``); every other provider is built by ``init_chat_model`` and needs
LangChain and the provider's integration package, which are optional (pyproject's
``[project.optional-dependencies]``): nothing here imports them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

OPENAI = "openai"


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider of ``init_chat_model``: its integration module, the package that ships it, and
    Parley's extra that installs both (None: not shipped as an extra, install it by hand)."""

    module: str
    package: str
    extra: str | None = None


# init_chat_model's providers (langchain 1.5) that take a model name and no further required
# argument. Each one Parley ships as an extra is exercised by the tests when installed.
PROVIDERS: dict[str, Provider] = {
    "anthropic": Provider("langchain_anthropic", "langchain-anthropic", extra="anthropic"),
    "ollama": Provider("langchain_ollama", "langchain-ollama", extra="ollama"),
    "google_genai": Provider("langchain_google_genai", "langchain-google-genai"),
    "google_vertexai": Provider("langchain_google_vertexai", "langchain-google-vertexai"),
    "mistralai": Provider("langchain_mistralai", "langchain-mistralai"),
    "groq": Provider("langchain_groq", "langchain-groq"),
    "bedrock_converse": Provider("langchain_aws", "langchain-aws"),
    "cohere": Provider("langchain_cohere", "langchain-cohere"),
    "deepseek": Provider("langchain_deepseek", "langchain-deepseek"),
    "fireworks": Provider("langchain_fireworks", "langchain-fireworks"),
    "together": Provider("langchain_together", "langchain-together"),
    "xai": Provider("langchain_xai", "langchain-xai"),
}
_LANGCHAIN = "langchain"  # init_chat_model's home (not langchain-core)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: its ``provider`` (``openai`` or a key of :data:`PROVIDERS`) and its ``name``
    as the provider knows it."""

    provider: str
    name: str

    @property
    def is_openai(self) -> bool:
        return self.provider == OPENAI


def parse_model_spec(text: str) -> ModelSpec:
    """``"anthropic:claude-x"`` -> ``ModelSpec("anthropic", "claude-x")``; ``"gpt-4o-mini"``,
    ``"openai:gpt-4o-mini"`` and ``"llama3:8b"`` (unknown prefix) -> the OpenAI path.

    Provider names are matched case-insensitively, ``-`` as ``_`` (``google-genai``). Raises
    ``ValueError`` for an empty model name (``"anthropic:"``, ``""``) or whitespace.
    """
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a model name (e.g. 'gpt-4o-mini' or 'anthropic:claude-x')")
    prefix, colon, rest = text.partition(":")
    provider = prefix.lower().replace("-", "_")
    if colon and (provider == OPENAI or provider in PROVIDERS):
        if not rest:
            raise ValueError(f"{text!r} names no model after {prefix!r}:")
        return ModelSpec(provider, rest)
    if colon and not (prefix and rest):
        raise ValueError(f"{text!r} is not a model name (expected 'provider:model')")
    return ModelSpec(OPENAI, text)


def missing_packages(spec: ModelSpec) -> str | None:
    """What to install for ``spec`` when its packages are missing (a sentence), else None.

    Checked without importing anything (``find_spec``), so start-up pays nothing for it.
    """
    if spec.is_openai:
        return None
    provider = PROVIDERS[spec.provider]
    absent = [name for name in (_LANGCHAIN, provider.module) if not _installed(name)]
    if not absent:
        return None
    if provider.extra is not None:
        extra = provider.extra
        how = f"install the extra: `uv sync --extra {extra}` (or pip install 'parley[{extra}]')"
    else:
        how = f"install them: `pip install langchain {provider.package}`"
    return f"the {spec.provider!r} provider needs langchain and {provider.package}; {how}"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
