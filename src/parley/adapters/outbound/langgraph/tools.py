"""The agent's tools: ones that make sense with no network (time, arithmetic).

``calculator`` evaluates arithmetic by walking the ``ast`` of the expression with a
whitelist of node types: no ``eval``, no names, no calls, no attribute access, and
bounded sizes so a request cannot make the process spin (``9**9**9``).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from datetime import UTC, datetime

from langchain_core.tools import BaseTool, tool

MAX_EXPRESSION_LENGTH = 200
MAX_EXPONENT = 64
MAX_MAGNITUDE = 10**30

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculationError(ValueError):
    """The expression is not plain arithmetic, or its result is out of bounds."""


def evaluate_arithmetic(expression: str) -> Number:
    """Evaluate ``+ - * / // % **`` over int/float literals and parentheses.

    Raises :class:`CalculationError` for anything else (names, calls, huge powers,
    division by zero, results beyond ``MAX_MAGNITUDE``).
    """
    text = expression.strip().replace("^", "**")
    if not text or len(text) > MAX_EXPRESSION_LENGTH:
        raise CalculationError(f"expression must be 1..{MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculationError("not an arithmetic expression") from exc
    return _evaluate(tree.body)


def _evaluate(node: ast.expr) -> Number:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _bounded(_UNARY[type(node.op)](_evaluate(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"exponent must be at most {MAX_EXPONENT} in magnitude")
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise CalculationError("division by zero") from exc
        except OverflowError as exc:
            raise CalculationError("result out of range") from exc
    raise CalculationError(f"unsupported element: {type(node).__name__}")


def _bounded(value: Number) -> Number:
    if isinstance(value, complex) or abs(value) > MAX_MAGNITUDE:
        raise CalculationError("result out of range")
    return value


def format_number(value: Number) -> str:
    """Integers as such; floats without binary noise (``0.1+0.2`` -> ``0.3``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return format(value, ".12g") if isinstance(value, float) else str(value)


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (numbers, + - * / // % **, parentheses) and return the result."""
    return format_number(evaluate_arithmetic(expression))


@tool
def current_time() -> str:
    """Return the current date and time in UTC, in ISO 8601 format."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_tools() -> list[BaseTool]:
    """The tools every agent graph gets."""
    return [calculator, current_time]
