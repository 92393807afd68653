"""Parley: a hexagonal chat-agent backend (FastAPI + LangGraph + PostgreSQL)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("parley")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"
