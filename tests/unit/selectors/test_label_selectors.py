"""Label selectors: parse, match, print and fail like apimachinery's labels package."""

from __future__ import annotations

import pytest

from kybernetes.api.selectors import (
    EVERYTHING,
    NOTHING,
    SelectorError,
    from_label_selector,
    parse_label_selector,
)

QNAME_REGEX = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_REGEX = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# selector, canonical String(), labels that match, labels that do not
PARSE_AND_MATCH = [
    ("", "", [{}, {"a": "b"}], []),
    ("   ", "", [{}], []),
    ("a=b", "a=b", [{"a": "b"}, {"a": "b", "c": "d"}], [{}, {"a": "c"}]),
    ("a==b", "a==b", [{"a": "b"}], [{"a": "B"}]),
    ("a!=b", "a!=b", [{}, {"a": "c"}], [{"a": "b"}]),
    ("a=", "a=", [{"a": ""}], [{}, {"a": "x"}]),
    ("a!=", "a!=", [{}, {"a": "x"}], [{"a": ""}]),
    ("a", "a", [{"a": ""}, {"a": "x"}], [{}, {"b": "a"}]),
    ("!a", "!a", [{}, {"b": "x"}], [{"a": "x"}]),
    ("a in (x,y)", "a in (x,y)", [{"a": "x"}, {"a": "y"}], [{}, {"a": "z"}]),
    ("a in(y,x)", "a in (x,y)", [{"a": "x"}], []),
    ("a notin (x,y)", "a notin (x,y)", [{}, {"a": "z"}], [{"a": "x"}, {"a": "y"}]),
    ("a in ()", "a in ()", [{"a": ""}], [{}, {"a": "x"}]),
    ("a in (,x)", "a in (,x)", [{"a": ""}, {"a": "x"}], [{"a": "y"}]),
    ("a in (x,)", "a in (,x)", [{"a": ""}], []),
    ("a in (x,,y)", "a in (,x,y)", [{"a": ""}], []),
    ("a>1", "a>1", [{"a": "2"}, {"a": "+5"}], [{}, {"a": "1"}, {"a": "x"}, {"a": " 2"}, {"a": "1_0"}]),
    ("a<10", "a<10", [{"a": "-3"}, {"a": "9"}], [{"a": "10"}, {"a": "99999999999999999999"}]),
    ("x=a,y!=b,!z", "x=a,y!=b,!z", [{"x": "a"}, {"x": "a", "y": "c"}], [{"x": "a", "y": "b"}, {"x": "a", "z": ""}]),
    ("  x = a ,  y  in ( b , c )  ", "x=a,y in (b,c)", [{"x": "a", "y": "c"}], [{"x": "a"}]),
    ("z=1,a=2", "a=2,z=1", [{"a": "2", "z": "1"}], []),  # sorted by key, like upstream
    ("in=notin", "in=notin", [{"in": "notin"}], []),  # keywords are fine as key and value
    ("a=in,b in (notin)", "a=in,b in (notin)", [{"a": "in", "b": "notin"}], []),
    ("example.com/role=db", "example.com/role=db", [{"example.com/role": "db"}], []),
    ("a\tin\n(x)", "a in (x)", [{"a": "x"}], []),
]


@pytest.mark.parametrize("text,canonical,good,bad", PARSE_AND_MATCH)
def test_parse_and_match(text: str, canonical: str, good: list, bad: list) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    for labels in good:
        assert sel.matches(labels), labels
    for labels in bad:
        assert not sel.matches(labels), labels
    # What we print parses back to the same selector.
    assert parse_label_selector(str(sel)) == sel


ERRORS = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("a=b,,c", "found ',', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a in (,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": "
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("app:monolith", f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {QNAME_REGEX}'),
    ("x=a||y=b", f'unable to parse requirement: values[0][x]: Invalid value: "a||y": {VALUE_REGEX}'),
    ("a in (-x,y-)", "unable to parse requirement: ["
                     f'values[0][a]: Invalid value: "-x": {VALUE_REGEX}, '
                     f'values[1][a]: Invalid value: "y-": {VALUE_REGEX}]'),
    ("a=" + "v" * 64, "unable to parse requirement: values[0][a]: Invalid value: "
                      f'"{"v" * 64}": must be no more than 63 bytes'),
    ("k" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"k" * 64}": '
               "name part must be no more than 63 bytes"),
    ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("a/", f'unable to parse requirement: <nil>: Invalid value: "a/": name part must be non-empty; {QNAME_REGEX}'),
    ("Example.com/a", 'unable to parse requirement: <nil>: Invalid value: "Example.com/a": prefix part '
                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                      "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                      "'example.com', regex used for validation is "
                      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
    ("a/b/c ?=? def", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a valid label key '
                      "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                      "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                      "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
                      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(text)
    assert exc.value.message == message
    assert str(exc.value) == message


def test_exact_value() -> None:
    assert parse_label_selector("a=b,c in (d)").exact_value("a") == "b"
    assert parse_label_selector("a=b,c in (d)").exact_value("c") == "d"
    assert parse_label_selector("a in (b,c)").exact_value("a") is None
    assert parse_label_selector("a!=b").exact_value("a") is None
    assert parse_label_selector("x=y").exact_value("a") is None


# metav1.LabelSelector, labels that match, labels that do not
STRUCTURED = [
    ({}, [{}, {"a": "b"}], []),
    ({"matchLabels": {}, "matchExpressions": []}, [{}], []),
    ({"matchLabels": {"app": "web", "tier": "fe"}}, [{"app": "web", "tier": "fe", "x": "y"}],
     [{"app": "web"}, {"app": "db", "tier": "fe"}]),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "stage"]}]},
     [{"env": "prod"}], [{}, {"env": "dev"}]),
    ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
     [{}, {"env": "prod"}], [{"env": "dev"}]),
    ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, [{"gpu": ""}], [{}]),
    ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, [{}], [{"gpu": "1"}]),
    ({"matchLabels": {"app": "web"},
      "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
     [{"app": "web", "env": "prod"}], [{"app": "web"}, {"env": "prod"}]),
]


@pytest.mark.parametrize("sel,good,bad", STRUCTURED)
def test_structured_selector(sel: dict, good: list, bad: list) -> None:
    matcher = from_label_selector(sel)
    for labels in good:
        assert matcher.matches(labels), labels
    for labels in bad:
        assert not matcher.matches(labels), labels


def test_structured_null_and_empty() -> None:
    assert from_label_selector(None) is NOTHING
    assert not NOTHING.matches({}) and not NOTHING.matches({"a": "b"})
    assert from_label_selector({}) is EVERYTHING
    assert EVERYTHING.matches({}) and EVERYTHING.empty() and not NOTHING.empty()
    assert str(from_label_selector({"matchLabels": {"b": "2", "a": "1"},
                                    "matchExpressions": [{"key": "c", "operator": "Exists"}]})) == "a=1,b=2,c"


STRUCTURED_ERRORS = [
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'),
    ({"matchLabels": {"a b": "c"}}, f'key: Invalid value: "a b": {QNAME_REGEX}'),
    ({"matchLabels": {"a": "c d"}}, f'values[0][a]: Invalid value: "c d": {VALUE_REGEX}'),
]


@pytest.mark.parametrize("sel,message", STRUCTURED_ERRORS)
def test_structured_errors(sel: dict, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        from_label_selector(sel)
    assert exc.value.message == message
