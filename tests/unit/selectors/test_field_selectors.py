"""Field selectors: parse, match, escape and fail like apimachinery's fields package."""

from __future__ import annotations

import pytest

from kybernetes.api.selectors import (
    FieldRequirement,
    SelectorError,
    escape_field_value,
    parse_field_selector,
    unescape_field_value,
)

POD = {
    "metadata.name": "web-0",
    "metadata.namespace": "default",
    "spec.nodeName": "",
    "status.phase": "Running",
    "spec.hostNetwork": True,
    "spec.restartPolicy": "Always",
    "spec.priority": 7,
}

# selector, canonical String(), does it match POD?
CASES = [
    ("", "", True),
    ("metadata.name=web-0", "metadata.name=web-0", True),
    ("metadata.name==web-0", "metadata.name=web-0", True),
    ("metadata.name!=web-0", "metadata.name!=web-0", False),
    ("status.phase!=Pending,metadata.namespace=default", "metadata.namespace=default,status.phase!=Pending", True),
    ("spec.nodeName=", "spec.nodeName=", True),  # unscheduled pods
    ("spec.nodeName!=", "spec.nodeName!=", False),
    ("spec.schedulerName=", "spec.schedulerName=", True),  # missing compares as ""
    ("spec.hostNetwork=true", "spec.hostNetwork=true", True),  # bools compare as strings
    ("spec.hostNetwork=True", "spec.hostNetwork=True", False),
    ("spec.priority=7", "spec.priority=7", True),
    ("metadata.name=web-0,,", "metadata.name=web-0", True),  # empty terms are skipped
    ("metadata.name=a\\,b\\=c\\\\d", "metadata.name=a\\,b\\=c\\\\d", False),
    ("metadata.name=a!b", "metadata.name=a!b", False),
    ("metadata.name!=x", "metadata.name!=x", True),
    ("metadata.name!=a!b", "metadata.name!=a!b", True),  # only the first operator splits
]


@pytest.mark.parametrize("text,canonical,matched", CASES)
def test_parse_and_match(text: str, canonical: str, matched: bool) -> None:
    sel = parse_field_selector(text)
    assert str(sel) == canonical
    assert sel.matches(POD) is matched
    assert parse_field_selector(str(sel)) == sel


def test_escaped_values() -> None:
    sel = parse_field_selector("metadata.name=a\\,b\\=c\\\\d,spec.x==y")
    assert sel.requirements == (
        FieldRequirement("metadata.name", "=", "a,b=c\\d"),
        FieldRequirement("spec.x", "=", "y"),
    )
    assert sel.matches({"metadata.name": "a,b=c\\d", "spec.x": "y"})
    for raw in ["", "plain", "a,b", "x=y", "back\\slash", "!=,==\\"]:
        assert unescape_field_value(escape_field_value(raw)) == raw


def test_operators_and_sorting() -> None:
    sel = parse_field_selector("b!=2,a=1")
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == [("a", "=", "1"), ("b", "!=", "2")]
    # The first operator found wins; '==' is not split into '=' and '=x'.
    assert parse_field_selector("a==x").requirements[0].value == "x"
    assert parse_field_selector("a!=x").requirements[0].operator == "!="


ERRORS = [
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
    ("a!==b", "invalid field selector: unescaped character in value: 61"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=b\\!", "invalid field selector: invalid escape sequence: \\!"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_field_selector(text)
    assert exc.value.message == message


def test_exact_value_and_supported_fields() -> None:
    sel = parse_field_selector("metadata.name=web-0,status.phase!=Failed")
    assert sel.exact_value("metadata.name") == "web-0"
    assert sel.exact_value("status.phase") is None
    assert sel.exact_value("metadata.namespace") is None
    assert parse_field_selector("metadata.name=").exact_value("metadata.name") == ""
    assert sel.fields == ["metadata.name", "status.phase"]
    sel.check_supported({"metadata.name", "metadata.namespace", "status.phase"})
    with pytest.raises(SelectorError) as exc:
        sel.check_supported({"metadata.name", "metadata.namespace"})
    assert exc.value.message == "field label not supported: status.phase"
    assert parse_field_selector("").empty() and parse_field_selector("").matches({})
