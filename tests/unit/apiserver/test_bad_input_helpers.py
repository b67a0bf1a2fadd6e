"""YAML bodies, query-parameter conversion and header text: the helpers that keep bad
input a client error."""

from __future__ import annotations

import pytest

from kybernetes.apiserver import errors, negotiation, yamlbody
from kybernetes.apiserver.headertext import text
from kybernetes.apiserver.queryparams import as_bool, as_int64

BOMB = (b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        b"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n")


def test_yaml_is_json_shaped():
    got = yamlbody.load(b"when: 2020-01-01\nraw: !!binary aGk=\n1: one\ntrue: yes\nnull: nothing\nn: 1.5\n")
    assert got == {"when": "2020-01-01", "raw": "aGk=", "1": "one", "true": True, "null": "nothing", "n": 1.5}
    # anchors within reason still work
    assert yamlbody.load(b"x: &x {a: 1}\ny: *x\n") == {"x": {"a": 1}, "y": {"a": 1}}


@pytest.mark.parametrize("body,message", [
    (BOMB, "excessive aliasing"),
    (b"a: &a [*a]", "contains itself"),
])
def test_yaml_refusals(body, message):
    with pytest.raises(yamlbody.YAMLBodyError, match=message):
        yamlbody.load(body)


def test_yaml_bodies_are_400_through_negotiation():
    for body in (BOMB, b"[" * 5000 + b"]" * 5000, b"a: [b\n  - c: {\n::", b"kind: A\n---\nkind: B\n"):
        with pytest.raises(errors.APIError) as e:
            negotiation.decode_body(body, "application/yaml")
        assert e.value.code == 400 and e.value.message.startswith("error decoding YAML: ")


def test_query_booleans_follow_go():
    assert [as_bool(v) for v in (None, "0", "false", "FALSE")] == [False] * 4
    assert [as_bool(v) for v in ("", "1", "true", "maybe", "2")] == [True] * 5


def test_query_int64():
    assert as_int64("limit", None) is None and as_int64("limit", "") is None
    assert as_int64("limit", "-5") == -5 and as_int64("limit", "+7") == 7
    assert as_int64("limit", str(2 ** 63 - 1)) == 2 ** 63 - 1
    for bad, why in ((" 5", "invalid syntax"), ("1e3", "invalid syntax"), ("0x10", "invalid syntax"),
                     (str(2 ** 63), "value out of range"), ("٣", "invalid syntax")):
        with pytest.raises(errors.APIError) as e:
            as_int64("limit", bad)
        assert e.value.code == 400 and e.value.message == f'limit: strconv.ParseInt: parsing "{bad}": {why}'


def test_header_text_replaces_undecodable_bytes():
    raw = b"ok\xff\xfe".decode("utf-8", "surrogateescape")
    assert text(raw) == "ok\ufffd\ufffd"
    assert text("héllo") == "héllo"
