"""compose.yaml and the env templates as the tests read them, without Docker: the YAML as
written, and Compose's variable interpolation (``${NAME}``, ``${NAME:-default}``,
``${NAME-default}``, ``${NAME:?message}``, ``${NAME?message}``, ``$$``) applied with the
values of an env file, as ``docker compose --env-file FILE`` does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
TEMPLATES = ROOT / "deploy" / "env"
ENVIRONMENTS = ("development", "staging", "production")

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


class MissingVariable(ValueError):
    """A ``${NAME:?message}`` whose variable is unset (or empty): Compose refuses to start."""


def compose_document() -> dict[str, Any]:
    """compose.yaml as YAML (anchors and ``<<`` merges resolved), not interpolated."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


def template(environment: str) -> dict[str, str]:
    """The values of ``deploy/env/.env.<environment>`` (an empty ``NAME=`` is ``""``)."""
    values = dotenv_values(TEMPLATES / f".env.{environment}")
    return {name: value or "" for name, value in values.items()}


def interpolate(text: str, values: dict[str, str]) -> str:
    """One string, as Compose interpolates it with ``values``."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        if name is None:
            return "$"
        value = values.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in {"-", ":-"}:
            return arg if empty else str(value)
        if op in {"?", ":?"}:
            if empty:
                raise MissingVariable(f"required variable {name} is missing a value: {arg}")
            return str(value)
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolated(node: Any, values: dict[str, str]) -> Any:
    """Every string of a YAML tree interpolated (keys too, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, values)
    if isinstance(node, list):
        return [interpolated(item, values) for item in node]
    if isinstance(node, dict):
        return {interpolate(str(k), values): interpolated(v, values) for k, v in node.items()}
    return node


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [text for item in node for text in _strings(item)]
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in (*_strings(key), *_strings(value))]
    return []


def required_variables() -> set[str]:
    """Names compose.yaml requires (``${NAME:?...}``) in its values (not its comments)."""
    return {
        match.group("name")
        for text in _strings(compose_document())
        for match in _VARIABLE.finditer(text)
        if match.group("op") in {":?", "?"}
    }


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (Compose accepts a mapping or NAME=value items)."""
    given = service.get("environment") or {}
    if isinstance(given, list):
        return dict(str(item).split("=", 1) for item in given)
    return {str(name): "" if value is None else str(value) for name, value in given.items()}
