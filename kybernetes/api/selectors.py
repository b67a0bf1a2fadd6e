"""Label and field selectors, with upstream's string syntax, semantics and error texts.

Label selectors (``?labelSelector=``) follow apimachinery's ``labels.Parse``:
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``,
``a<1``, comma meaning AND.  Field selectors (``?fieldSelector=``) follow
``fields.ParseSelector``: ``a=b``, ``a==b``, ``a!=b``, comma meaning AND, with ``\\``
escaping ``\\``, ``,`` and ``=`` inside values.

Error messages match upstream's word for word because clients (and people) see them in
400 BadRequest responses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Container, Iterable, Mapping, Optional

from kybernetes.api.goformat import go_quote as _go_quote
from kybernetes.api.names import is_qualified_name, is_valid_label_value

__all__ = [
    "SelectorError",
    "Requirement",
    "LabelSelector",
    "FieldRequirement",
    "FieldSelector",
    "parse_label_selector",
    "from_label_selector",
    "parse_field_selector",
    "escape_field_value",
    "unescape_field_value",
    "EVERYTHING",
    "NOTHING",
    "is_qualified_name",
    "is_valid_label_value",
]


class SelectorError(ValueError):
    """A selector that does not parse or validate; `message` is upstream's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _go_strings(values: Optional[list[str]]) -> str:
    """Go's %#v for a []string."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _invalid(path: str, bad: str, detail: str) -> str:
    """field.Invalid(...).Error()"""
    return f"{path}: Invalid value: {bad}: {detail}"


def _aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message bare, several in brackets,
    duplicates dropped."""
    seen: list[str] = []
    for e in errs:
        if e not in seen:
            seen.append(e)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


# ---------------------------------------------------------------------------
# label selectors

# selection.Operator values
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = [IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN]
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(s: str) -> Optional[int]:
    """strconv.ParseInt(s, 10, 64): no spaces, no underscores, in range."""
    if not _INT64_RE.fullmatch(s):
        return None
    v = int(s)
    if not -(2**63) <= v < 2**63:
        return None
    return v


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `key` `operator` `values`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have = _parse_int64(labels[self.key])
            want = _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        prefix = "!" if self.operator == DOES_NOT_EXIST else ""
        if self.operator in (EXISTS, DOES_NOT_EXIST):
            return prefix + self.key
        sym = {IN: " in ", NOT_IN: " notin ", GREATER_THAN: ">", LESS_THAN: "<"}.get(
            self.operator, self.operator
        )
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            vals = f"({vals})"
        return f"{self.key}{sym}{vals}"


def _new_requirement(key: str, op: str, values: Optional[list[str]], path: str) -> Requirement:
    """labels.NewRequirement: validate and build; `path` is the field path prefix
    upstream reports ('' for the root, which it renders as '<nil>' for keys)."""
    errs: list[str] = []
    key_path = f"{path}.key" if path else "key"
    values_path = f"{path}.values" if path else "values"
    kerrs = is_qualified_name(key)
    if kerrs:
        errs.append(_invalid(key_path, _go_quote(key), "; ".join(kerrs)))
    vals = list(values) if values is not None else []
    if op in (IN, NOT_IN):
        if not vals:
            errs.append(_invalid(values_path, _go_strings(values), "for 'in', 'notin' operators, values set can't be empty"))
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(_invalid(values_path, _go_strings(values), "exact-match compatibility requires one single value"))
    elif op in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(_invalid(values_path, _go_strings(values), "values set must be empty for exists and does not exist"))
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(_invalid(values_path, _go_strings(values), "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(_invalid(f"{values_path}[{i}]", _go_quote(v), "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(_go_quote(o) for o in [DOES_NOT_EXIST, EQUALS, DOUBLE_EQUALS, IN, NOT_EQUALS, NOT_IN, EXISTS, GREATER_THAN, LESS_THAN])
        errs.append(f"{path + '.' if path else ''}operator: Unsupported value: {_go_quote(op)}: supported values: {supported}")
    for i, v in enumerate(vals):
        verrs = is_valid_label_value(v)
        if verrs:
            errs.append(_invalid(f"{values_path}[{i}][{key}]", _go_quote(v), "; ".join(verrs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(vals))


class LabelSelector:
    """A parsed label selector: the AND of its requirements.  `nothing` marks the
    selector that matches no object (a null metav1.LabelSelector)."""

    __slots__ = ("requirements", "nothing")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        # Upstream keeps requirements sorted by key (stable), which fixes String() order.
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self.nothing = nothing

    def matches(self, labels: Optional[Mapping[str, str]]) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        """True for the selector that matches everything."""
        return not self.nothing and not self.requirements

    def exact_value(self, key: str) -> Optional[str]:
        """The single value `key` must equal (labels RequiresExactMatch), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self.nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LabelSelector)
            and self.nothing == other.nothing
            and self.requirements == other.requirements
        )

    def __hash__(self) -> int:
        return hash((self.nothing, self.requirements))


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


# -- lexer: same token rules as upstream (longest special-symbol run that is a token)

_T_ERROR = "error"
_T_EOS = "eos"
_T_CLOSE = ")"
_T_COMMA = ","
_T_NOT = "!"
_T_DEQ = "=="
_T_EQ = "="
_T_GT = ">"
_T_IDENT = "ident"
_T_IN = "in"
_T_LT = "<"
_T_NEQ = "!="
_T_NOTIN = "notin"
_T_OPEN = "("

_TOKENS = {
    ")": _T_CLOSE,
    ",": _T_COMMA,
    "!": _T_NOT,
    "==": _T_DEQ,
    "=": _T_EQ,
    ">": _T_GT,
    "in": _T_IN,
    "<": _T_LT,
    "!=": _T_NEQ,
    "notin": _T_NOTIN,
    "(": _T_OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[str, str]]:
    """All tokens of `s` up to and including end-of-string."""
    pos = 0
    n = len(s)
    out: list[tuple[str, str]] = []

    def read() -> str:
        nonlocal pos
        if pos < n:
            ch = s[pos]
            pos += 1
            return ch
        return "\0"

    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == "\0":
            out.append((_T_EOS, ""))
            return out
        pos -= 1
        if ch in _SPECIAL:
            buf = ""
            last: Optional[tuple[str, str]] = None
            while True:
                c = read()
                if c == "\0":
                    break
                if c in _SPECIAL:
                    buf += c
                    if buf in _TOKENS:
                        last = (_TOKENS[buf], buf)
                    elif last is not None:
                        pos -= 1
                        break
                else:
                    pos -= 1
                    break
            out.append(last if last is not None else (_T_ERROR, f"error expected: keyword found '{buf}'"))
        else:
            buf = ""
            while True:
                c = read()
                if c == "\0":
                    break
                if c in _SPECIAL or c in _WHITESPACE:
                    pos -= 1
                    break
                buf += c
            out.append((_TOKENS.get(buf, _T_IDENT), buf))


class _Parser:
    """Recursive-descent parser with one token of lookahead, as upstream."""

    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def lookahead(self, values: bool) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        # In value position the keywords are ordinary identifiers ("a=in").
        if values and tok in (_T_IN, _T_NOTIN):
            tok = _T_IDENT
        return tok, lit

    def consume(self, values: bool) -> tuple[str, str]:
        tok, lit = self.lookahead(values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_T_IDENT, _T_NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e.message}") from None
                t, l = self.consume(True)
                if t == _T_EOS:
                    return reqs
                if t == _T_COMMA:
                    t2, l2 = self.lookahead(True)
                    if t2 not in (_T_IDENT, _T_NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{l}', expected: ',' or 'end of string'")
            elif tok == _T_EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        key, op = self.key_and_inferred_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, op, [], "")
        op = self.operator()
        if op in (IN, NOT_IN):
            values = self.values()
        else:
            values = self.exact_value()
        return _new_requirement(key, op, sorted(values), "")

    def key_and_inferred_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.consume(True)
        if tok == _T_NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume(True)
        if tok != _T_IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        errs = is_qualified_name(lit)
        if errs:
            # Upstream validates with a nil field path here, which prints as "<nil>".
            raise SelectorError(_invalid("<nil>", _go_quote(lit), "; ".join(errs)))
        t, _ = self.lookahead(True)
        if t in (_T_EOS, _T_COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def operator(self) -> str:
        tok, lit = self.consume(False)
        ops = {
            _T_IN: IN,
            _T_EQ: EQUALS,
            _T_DEQ: DOUBLE_EQUALS,
            _T_GT: GREATER_THAN,
            _T_LT: LESS_THAN,
            _T_NOTIN: NOT_IN,
            _T_NEQ: NOT_EQUALS,
        }
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def values(self) -> set[str]:
        tok, lit = self.consume(True)
        if tok != _T_OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok in (_T_IDENT, _T_COMMA):
            s = self.identifiers()
            t, _ = self.consume(True)
            if t != _T_CLOSE:
                # Upstream reports the token after '(' here, not the offending one.
                raise SelectorError(f"found '{lit}', expected: ')'")
            return s
        if tok == _T_CLOSE:  # "()" is the set holding the empty value
            self.consume(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        s: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _T_IDENT:
                s.add(lit)
                t2, l2 = self.lookahead(True)
                if t2 == _T_COMMA:
                    continue
                if t2 == _T_CLOSE:
                    return s
                raise SelectorError(f"found '{l2}', expected: ',' or ')'")
            elif tok == _T_COMMA:
                # Leading, doubled and trailing commas each stand for the empty value.
                if not s:
                    s.add("")
                t2, _ = self.lookahead(True)
                if t2 == _T_CLOSE:
                    s.add("")
                    return s
                if t2 == _T_COMMA:
                    self.consume(True)
                    s.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead(True)
        if tok in (_T_EOS, _T_COMMA):
            return {""}
        tok, lit = self.consume(True)
        if tok == _T_IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(selector: Optional[str]) -> LabelSelector:
    """Parse a label selector string; '' (or None) selects everything.
    Raises SelectorError with upstream's message."""
    if not selector:
        return EVERYTHING
    return LabelSelector(_Parser(selector).parse())


_STRUCTURED_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector(sel: Optional[Mapping[str, Any]]) -> LabelSelector:
    """A metav1.LabelSelector dict as a matcher (LabelSelectorAsSelector): None matches
    nothing, an empty selector matches everything."""
    if sel is None:
        return NOTHING
    match_labels = sel.get("matchLabels") or {}
    match_exprs = sel.get("matchExpressions") or []
    if not match_labels and not match_exprs:
        return EVERYTHING
    reqs = []
    for k, v in match_labels.items():
        reqs.append(_new_requirement(str(k), EQUALS, ["" if v is None else str(v)], ""))
    for expr in match_exprs:
        expr = expr or {}
        op_name = expr.get("operator") or ""
        op = _STRUCTURED_OPS.get(op_name)
        if op is None:
            raise SelectorError(f"{_go_quote(str(op_name))} is not a valid label selector operator")
        values = expr.get("values")
        reqs.append(
            _new_requirement(
                str(expr.get("key") or ""),
                op,
                None if values is None else [str(v) for v in values],
                "",
            )
        )
    return LabelSelector(reqs)


# ---------------------------------------------------------------------------
# field selectors


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector; `operator` is '=' (also for '==') or '!='."""

    field: str
    operator: str
    value: str

    def matches(self, values: Mapping[str, Any]) -> bool:
        have = _field_str(values.get(self.field))
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


def _field_str(v: Any) -> str:
    # Field values are compared as the strings upstream's field-set functions produce:
    # a missing field is "", booleans are "true"/"false", numbers in decimal.
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


class FieldSelector:
    """A parsed field selector: the AND of its requirements."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self.requirements: tuple[FieldRequirement, ...] = tuple(requirements)

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether an object whose selectable fields are `values` is selected."""
        return all(r.matches(values) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def exact_value(self, field: str) -> Optional[str]:
        """The value `field` must equal (RequiresExactMatch), else None; lets the server
        turn `metadata.name=x` into a single get."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    @property
    def fields(self) -> list[str]:
        return [r.field for r in self.requirements]

    def check_supported(self, supported: Container[str]) -> None:
        """Raise SelectorError('field label not supported: F') for the first field
        the kind does not support."""
        for r in self.requirements:
            if r.field not in supported:
                raise SelectorError(f"field label not supported: {r.field}")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


def escape_field_value(s: str) -> str:
    """fields.EscapeValue: backslash-escape '\\', ',' and '='."""
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(s: str) -> str:
    """fields.UnescapeValue; SelectorError on a bad escape or a bare ',' or '='."""
    if not any(c in s for c in "\\,="):
        return s
    out = []
    in_slash = False
    for c in s:
        if in_slash:
            if c in "\\,=":
                out.append(c)
            else:
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            in_slash = False
            continue
        if c == "\\":
            in_slash = True
        elif c in ",=":
            # Upstream formats the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    """Split on commas not preceded by an escaping backslash."""
    if not s:
        return []
    terms = []
    start = 0
    in_slash = False
    for i, c in enumerate(s):
        if in_slash:
            in_slash = False
        elif c == "\\":
            in_slash = True
        elif c == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


# '==' before '=' so that 'a==b' does not leave '=b' as the value.
_TERM_OPERATORS = ("!=", "==", "=")


def _split_term(term: str) -> Optional[tuple[str, str, str]]:
    for i in range(len(term)):
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def parse_field_selector(selector: Optional[str]) -> FieldSelector:
    """Parse a field selector string; '' (or None) selects everything.
    Raises SelectorError with upstream's message."""
    if not selector:
        return FieldSelector()
    reqs = []
    # Upstream sorts the terms, which fixes the order of requirements and String().
    for part in sorted(_split_terms(selector)):
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = unescape_field_value(rhs)
        reqs.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS, value))
    return FieldSelector(reqs)
