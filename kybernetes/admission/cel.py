"""CEL for admission (matchConditions, ValidatingAdmissionPolicy), on the
`common-expression-language` engine: compile once per expression text, evaluate against
plain JSON values, and word errors as upstream's CEL admission code does."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

Obj = dict[str, Any]


class CompileError(ValueError):
    """The expression does not parse."""


class EvalError(Exception):
    """The expression failed at run time (missing field, no overload, wrong result type)."""


@lru_cache(maxsize=4096)
def _compile(expression: str) -> Any:
    # imported on first use: the package also loads its command-line tooling (~0.25 s), which
    # a server without policies or matchConditions should not pay for at start-up
    import cel

    try:
        return cel.compile(expression)
    except ValueError as e:
        raise CompileError(str(e).replace(f"Failed to parse expression '{expression}': ", "")) from None


def compile_error(expression: str, variables: tuple[str, ...] = ()) -> Optional[str]:
    """upstream's field detail for an expression that does not compile (or reads a variable
    outside `variables`, when given), or None."""
    try:
        program = _compile(expression)
    except CompileError as e:
        return f"compilation failed: {e}"
    if variables:
        for name in program.variables():
            if name.split(".")[0] not in variables:
                return f"compilation failed: ERROR: <input>:1:1: undeclared reference to '{name}' (in container '')"
    return None


def evaluate(expression: str, activation: Obj) -> Any:
    """The value of `expression` with the variables in `activation`."""
    try:
        program = _compile(expression)
    except CompileError as e:
        raise EvalError(f"compilation failed: {e}") from None
    try:
        return program.execute(activation)
    except KeyError as e:
        raise EvalError(f"no such key: {e.args[0] if e.args else ''}") from None
    except (TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError) as e:
        raise EvalError(str(e)) from None


def evaluate_bool(expression: str, activation: Obj) -> bool:
    out = evaluate(expression, activation)
    if not isinstance(out, bool):
        raise EvalError(f"expected boolean result, got {type(out).__name__}")
    return out


def request_value(review_request: Obj) -> Obj:
    """The `request` variable: the AdmissionRequest without the objects (which have their own
    variables)."""
    return {k: v for k, v in review_request.items() if k not in ("object", "oldObject")}


def match_conditions(conditions: list[Obj], activation: Obj) -> tuple[bool, list[str]]:
    """upstream matchconditions.Matcher: (matches, errors).  A condition that is false
    decides at once (no match, errors ignored); otherwise errors are returned for the
    caller's failurePolicy."""
    errs: list[str] = []
    for c in conditions:
        expr = c.get("expression") or ""
        try:
            if not evaluate_bool(expr, activation):
                return False, []
        except EvalError as e:
            errs.append(f"expression '{expr}' resulted in error: {e}")
    return not errs, errs
