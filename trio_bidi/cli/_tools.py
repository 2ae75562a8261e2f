"""Tools for ``trio-bidi chat --tool-demo`` and ``trio-bidi demo``: a clock and a calculator."""

from __future__ import annotations

import ast
import datetime
import operator
import zoneinfo
from collections.abc import Callable
from typing import Any

__all__ = ["calculate", "current_time", "evaluate"]

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_EXPONENT = 1000
_MAX_CHARS = 200
_MAX_BITS = 10_000  # about 3000 digits


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression: numbers, ``+ - * / // % **`` and parentheses.

    Args:
        expression: For example ``"1234 * 5678"`` or ``"(2 + 3) ** 2"``.

    Returns:
        The value.

    Raises:
        ValueError: The expression is not plain arithmetic, is too long, or divides by
            zero.
    """
    if len(expression) > _MAX_CHARS:
        raise ValueError(f"expression longer than {_MAX_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc

    def walk(node: ast.AST) -> int | float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            if isinstance(node.value, bool):
                raise ValueError(f"not a number: {node.value!r}")
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Pow):
                if abs(right) > _MAX_EXPONENT:
                    raise ValueError(f"exponent {right} is larger than {_MAX_EXPONENT}")
                if isinstance(left, int) and left.bit_length() * abs(right) > _MAX_BITS:
                    raise ValueError("the result would be too large")
            try:
                value = _BINARY[type(node.op)](left, right)
            except ZeroDivisionError as exc:
                raise ValueError("division by zero") from exc
            except OverflowError as exc:
                raise ValueError("the result is too large") from exc
            if not isinstance(value, int | float):
                raise ValueError(f"the result is not a real number: {value!r}")
            return value
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](walk(node.operand))  # type: ignore[no-any-return]
        raise ValueError(f"unsupported element {ast.dump(node)[:60]!r} in {expression!r}")

    return walk(tree)


def calculate(expression: str) -> str:
    """Calculate an arithmetic expression exactly.

    Args:
        expression: Numbers with + - * / // % ** and parentheses, e.g. "1234 * 5678".
    """
    return f"{expression.strip()} = {evaluate(expression)}"


def current_time(timezone: str = "UTC") -> str:
    """Tell the current date and time in a time zone.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris" or "UTC".
    """
    try:
        zone: datetime.tzinfo = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        if timezone.upper() != "UTC":
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        zone = datetime.UTC
    now = datetime.datetime.now(zone)
    return now.strftime(f"%A %d %B %Y, %H:%M:%S ({timezone})")
