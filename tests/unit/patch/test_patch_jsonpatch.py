"""RFC 6902 JSON patch: the RFC's appendix examples, upstream's leniencies, and error codes."""

from __future__ import annotations

import copy

import pytest

from kybernetes.api.patch import GENERIC_422_MESSAGE, PatchError, apply_json_patch


# --- RFC 6902 appendix A ---------------------------------------------------------------------

RFC_EXAMPLES = [
    ("A.1 add object member", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ("A.2 add array element", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ("A.3 remove object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
     {"foo": "bar"}),
    ("A.4 remove array element", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ("A.5 replace", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ("A.6 move value",
     {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7 move array element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8 test success", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10 add nested member object", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11 ignore unrecognized members", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ("A.14 ~ escape ordering", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
     {"/": 9, "~1": 10}),
    ("A.16 add array value", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
]


@pytest.mark.parametrize("name,doc,ops,expected", RFC_EXAMPLES, ids=[e[0] for e in RFC_EXAMPLES])
def test_rfc6902_examples(name, doc, ops, expected):
    before = copy.deepcopy(doc), copy.deepcopy(ops)
    assert apply_json_patch(doc, ops) == expected
    assert (doc, ops) == before  # inputs untouched


RFC_ERRORS = [
    ("A.9 test failure", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ("A.12 add to nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    ("A.15 strings are not numbers", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}]),
]


@pytest.mark.parametrize("name,doc,ops", RFC_ERRORS, ids=[e[0] for e in RFC_ERRORS])
def test_rfc6902_errors_are_422(name, doc, ops):
    with pytest.raises(PatchError) as err:
        apply_json_patch(doc, ops)
    assert err.value.code == 422
    assert err.value.reason == "Invalid"
    # Upstream's Status carries a fixed sentence, not the detail.
    assert err.value.status_message == GENERIC_422_MESSAGE


# --- pointers, indices -----------------------------------------------------------------------

CM = {"metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v", "a/b": "s", "m~n": "t"}}


def test_escaped_tokens():
    out = apply_json_patch(CM, [
        {"op": "add", "path": "/metadata/labels/example.com~1role", "value": "db"},
        {"op": "remove", "path": "/data/a~1b"},
        {"op": "remove", "path": "/data/m~0n"},
    ])
    assert out["metadata"]["labels"] == {"a": "1", "example.com/role": "db"}
    assert out["data"] == {"k": "v"}


def test_empty_key_token():
    assert apply_json_patch({}, [{"op": "add", "path": "/", "value": 1}]) == {"": 1}


@pytest.mark.parametrize("path,expected", [
    ("/l/-", ["a", "b", "c", "z"]),
    ("/l/0", ["z", "a", "b", "c"]),
    ("/l/3", ["a", "b", "c", "z"]),
    ("/l/-1", ["a", "b", "c", "z"]),   # upstream: negative add indices count from the end slot
    ("/l/-4", ["z", "a", "b", "c"]),
])
def test_add_index_positions(path, expected):
    assert apply_json_patch({"l": ["a", "b", "c"]}, [{"op": "add", "path": path, "value": "z"}]) == {"l": expected}


@pytest.mark.parametrize("op", [
    {"op": "add", "path": "/l/4", "value": "z"},
    {"op": "add", "path": "/l/-5", "value": "z"},
    {"op": "add", "path": "/l/x", "value": "z"},
    {"op": "add", "path": "/l/1.0", "value": "z"},
    {"op": "add", "path": "/l/ 1", "value": "z"},
    {"op": "remove", "path": "/l/3"},
    {"op": "remove", "path": "/l/-"},
    {"op": "replace", "path": "/l/3", "value": "z"},
    {"op": "replace", "path": "/l/-", "value": "z"},
    {"op": "test", "path": "/l/9", "value": "z"},
])
def test_bad_indices(op):
    with pytest.raises(PatchError) as err:
        apply_json_patch({"l": ["a", "b", "c"]}, [op])
    assert err.value.code == 422


def test_negative_indices_for_remove_and_replace():
    doc = {"l": ["a", "b", "c"]}
    assert apply_json_patch(doc, [{"op": "remove", "path": "/l/-1"}]) == {"l": ["a", "b"]}
    assert apply_json_patch(doc, [{"op": "replace", "path": "/l/-3", "value": "z"}]) == {"l": ["z", "b", "c"]}
    assert apply_json_patch(doc, [{"op": "remove", "path": "/l/01"}]) == {"l": ["a", "c"]}


def test_index_through_intermediate_array():
    pod = {"spec": {"containers": [{"name": "a", "image": "a"}]}}
    out = apply_json_patch(pod, [{"op": "replace", "path": "/spec/containers/0/image", "value": "b"}])
    assert out == {"spec": {"containers": [{"name": "a", "image": "b"}]}}
    with pytest.raises(PatchError):
        apply_json_patch(pod, [{"op": "add", "path": "/spec/containers/5/image", "value": "b"}])
    with pytest.raises(PatchError):
        apply_json_patch(pod, [{"op": "add", "path": "/spec/containers/0/image/x", "value": "b"}])


# --- operations ------------------------------------------------------------------------------

def test_move_and_copy():
    doc = {"a": {"x": [1, {"y": 2}]}, "b": {}}
    out = apply_json_patch(doc, [
        {"op": "copy", "from": "/a/x", "path": "/b/x"},
        {"op": "replace", "path": "/b/x/1/y", "value": 3},   # the copy is deep
        {"op": "move", "from": "/a", "path": "/c"},
    ])
    assert out == {"b": {"x": [1, {"y": 3}]}, "c": {"x": [1, {"y": 2}]}}


def test_move_into_own_child_fails():
    with pytest.raises(PatchError):
        apply_json_patch({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/c"}])


def test_remove_missing_member_fails():
    with pytest.raises(PatchError):
        apply_json_patch(CM, [{"op": "remove", "path": "/data/zzz"}])


def test_upstream_leniencies():
    # evanphx/json-patch v4 behaviour the API server exposes.
    assert apply_json_patch(CM, [{"op": "replace", "path": "/data/new", "value": "q"}])["data"]["new"] == "q"
    assert apply_json_patch(CM, [{"op": "add", "path": "/data/n"}])["data"]["n"] is None
    assert apply_json_patch(CM, [{"op": "copy", "from": "/data/zz", "path": "/data/yy"}])["data"]["yy"] is None
    assert apply_json_patch(CM, [{"op": "test", "path": "/data/zz", "value": None}]) == CM
    assert apply_json_patch(CM, [{"op": "test", "path": "/data/zz"}]) == CM
    with pytest.raises(PatchError):
        apply_json_patch(CM, [{"op": "test", "path": "/data/k"}])


def test_test_equality_is_json_equality():
    doc = {"n": 1, "b": True, "o": {"x": [1, 2]}}
    apply_json_patch(doc, [{"op": "test", "path": "/n", "value": 1.0}])
    apply_json_patch(doc, [{"op": "test", "path": "/o", "value": {"x": [1, 2]}}])
    with pytest.raises(PatchError):
        apply_json_patch(doc, [{"op": "test", "path": "/b", "value": 1}])
    with pytest.raises(PatchError):
        apply_json_patch(doc, [{"op": "test", "path": "/o", "value": {"x": [2, 1]}}])


def test_root_path():
    new = {"metadata": {"name": "y"}}
    assert apply_json_patch(CM, [{"op": "replace", "path": "", "value": new}]) == new
    assert apply_json_patch(CM, [{"op": "test", "path": "", "value": CM}]) == CM
    for op in (
        {"op": "add", "path": "", "value": {}},
        {"op": "remove", "path": ""},
        {"op": "replace", "path": "", "value": "scalar"},
    ):
        with pytest.raises(PatchError):
            apply_json_patch(CM, [op])


@pytest.mark.parametrize("op", [
    {"op": "frob", "path": "/a"},
    {"path": "/a"},
    {"op": "add", "value": 1},
    {"op": "add", "path": 5, "value": 1},
    {"op": "move", "path": "/a"},
    {"op": "add", "path": "a", "value": 1},
])
def test_malformed_operations_are_422(op):
    with pytest.raises(PatchError) as err:
        apply_json_patch({"a": 1}, [op])
    assert err.value.code == 422


@pytest.mark.parametrize("ops,text", [
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
    (["x"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
])
def test_undecodable_patch_is_400(ops, text):
    with pytest.raises(PatchError) as err:
        apply_json_patch({}, ops)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"
    assert err.value.status_message == text


def test_too_many_operations_is_413():
    with pytest.raises(PatchError) as err:
        apply_json_patch({}, [{"op": "test", "path": "/x"}] * 10001)
    assert err.value.code == 413


def test_null_patch_is_a_no_op():
    assert apply_json_patch(CM, None) == CM


def test_failure_is_atomic_and_inputs_untouched():
    doc = copy.deepcopy(CM)
    ops = [{"op": "add", "path": "/data/x", "value": {"deep": [1]}}, {"op": "test", "path": "/data/k", "value": "no"}]
    with pytest.raises(PatchError):
        apply_json_patch(doc, ops)
    assert doc == CM
    out = apply_json_patch(doc, ops[:1])
    out["data"]["x"]["deep"].append(2)
    assert ops[0]["value"] == {"deep": [1]}  # values are copied in, not shared
