"""RFC 7386 JSON merge patch: the RFC's appendix table plus the flows kubectl uses."""

from __future__ import annotations

import copy

import pytest

from kybernetes.api.patch import apply_merge_patch

RFC_TABLE = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("doc,patch,expected", RFC_TABLE)
def test_rfc7386_appendix(doc, patch, expected):
    before = copy.deepcopy(doc), copy.deepcopy(patch)
    assert apply_merge_patch(doc, patch) == expected
    assert (doc, patch) == before


def test_result_shares_nothing_with_inputs():
    doc = {"a": {"b": [1]}}
    patch = {"c": {"d": [2]}}
    out = apply_merge_patch(doc, patch)
    out["a"]["b"].append(9)
    out["c"]["d"].append(9)
    assert doc == {"a": {"b": [1]}} and patch == {"c": {"d": [2]}}


def test_label_and_annotate():
    cm = {"metadata": {"name": "x", "labels": {"app": "x", "tier": "web"}}, "data": {"k": "v"}}
    # kubectl label x env=prod tier-
    out = apply_merge_patch(cm, {"metadata": {"labels": {"env": "prod", "tier": None}}})
    assert out["metadata"]["labels"] == {"app": "x", "env": "prod"}
    # kubectl annotate x note=hi (no annotations yet)
    out = apply_merge_patch(cm, {"metadata": {"annotations": {"note": "hi"}}})
    assert out["metadata"]["annotations"] == {"note": "hi"}


def test_scale_subresource():
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "x"}, "spec": {"replicas": 1}}
    assert apply_merge_patch(scale, {"spec": {"replicas": 5}})["spec"] == {"replicas": 5}


def test_lists_are_replaced_whole():
    pod = {"spec": {"containers": [{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]}}
    out = apply_merge_patch(pod, {"spec": {"containers": [{"name": "a", "image": "z"}]}})
    assert out == {"spec": {"containers": [{"name": "a", "image": "z"}]}}


def test_nulls_inside_replacing_arrays_are_pruned_like_upstream():
    # evanphx/json-patch prunes null members of objects nested in a value that replaces.
    pod = {"spec": {"containers": [{"name": "a"}]}}
    out = apply_merge_patch(pod, {"spec": {"containers": [{"name": "a", "tty": None}, None]}})
    assert out == {"spec": {"containers": [{"name": "a"}, None]}}
    # ...but an object replaced by an array keeps the array as sent.
    out = apply_merge_patch({"a": {"x": 1}}, {"a": [{"b": None}]})
    assert out == {"a": [{"b": None}]}
