"""Field paths, field sets and the FieldsV1 wire form."""

from __future__ import annotations

import json

import pytest

from kybernetes.api.managedfields import (
    FieldSet,
    FieldsV1Error,
    crd_type_info,
    deduced_type_info,
    key_pe,
    make_path,
    path_string,
    to_field_set,
    type_info,
    value_pe,
)

POD = type_info("", "v1", "Pod")
DEPLOYMENT = type_info("apps", "v1", "Deployment")
SERVICE = type_info("", "v1", "Service")


def roundtrip(doc: dict) -> dict:
    return FieldSet.from_fields_v1(doc).to_fields_v1()


# ---------------------------------------------------------------- FieldsV1
def test_fields_v1_round_trip_keeps_every_element_kind_and_upstream_order():
    doc = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}},
        "f:spec": {
            "f:containers": {
                'k:{"name":"c"}': {
                    ".": {},
                    "f:image": {},
                    "f:ports": {
                        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
                        'k:{"containerPort":80,"protocol":"UDP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}},
                    },
                },
            },
            "f:args": {"i:0": {}, "i:1": {}},
        },
    }
    out = roundtrip(doc)
    assert out == doc
    # keys come out sorted by element (fields by name, "." first inside a member)
    assert list(out) == ["f:metadata", "f:spec"]
    assert list(out["f:spec"]) == ["f:args", "f:containers"]
    item = out["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert list(item) == [".", "f:image", "f:ports"]


def test_list_map_key_json_is_sorted_and_compact_whatever_the_input_order():
    s = FieldSet.from_fields_v1({'k:{"protocol":"TCP", "containerPort":8080}': {}})
    assert s.to_fields_v1() == {'k:{"containerPort":8080,"protocol":"TCP"}': {}}
    assert s.has((key_pe({"containerPort": 8080, "protocol": "TCP"}),))


def test_numbers_read_as_floats_still_match_integer_keys():
    # upstream reads key values as float64; 80 and 80.0 are the same key
    s = FieldSet.from_fields_v1({'k:{"containerPort":80.0,"protocol":"TCP"}': {}})
    assert s.has((key_pe({"containerPort": 80, "protocol": "TCP"}),))
    assert s.to_fields_v1() == {'k:{"containerPort":80,"protocol":"TCP"}': {}}


def test_values_are_written_like_go_json():
    s = FieldSet.from_paths(make_path("f", ("v", "a<b&c>")), make_path("g", ("v", 1.5)), make_path("h", ("v", True)))
    assert s.to_fields_v1() == {
        "f:f": {'v:"a\\u003cb\\u0026c\\u003e"': {}},
        "f:g": {"v:1.5": {}},
        "f:h": {"v:true": {}},
    }
    assert s.to_json() == '{"f:f":{"v:\\"a\\\\u003cb\\\\u0026c\\\\u003e\\"":{}},"f:g":{"v:1.5":{}},"f:h":{"v:true":{}}}'


def test_dot_alone_is_the_same_as_an_empty_object():
    assert roundtrip({"f:a": {".": {}}}) == {"f:a": {}}


def test_unknown_element_kinds_are_dropped_and_bad_keys_fail():
    assert roundtrip({"x:future": {"f:a": {}}, "f:b": {}}) == {"f:b": {}}
    with pytest.raises(FieldsV1Error):
        FieldSet.from_fields_v1({"f": {}})
    with pytest.raises(FieldsV1Error):
        FieldSet.from_fields_v1({"fx": {}})
    with pytest.raises(FieldsV1Error):
        FieldSet.from_fields_v1({"k:[1]": {}})
    with pytest.raises(FieldsV1Error):
        FieldSet.from_fields_v1({"i:x": {}})


def test_reads_json_text_too():
    assert FieldSet.from_fields_v1('{"f:data":{".":{},"f:key":{}}}').paths() == [".data", ".data.key"]


# ---------------------------------------------------------------- paths and algebra
def test_path_strings_match_upstream():
    p = make_path("spec", "template", "spec", "containers", {"name": "c"}, "image")
    assert path_string(p) == '.spec.template.spec.containers[name="c"].image'
    assert path_string(make_path("ports", {"protocol": "TCP", "containerPort": 80})) == \
        '.ports[containerPort=80,protocol="TCP"]'
    assert path_string(make_path("metadata", "finalizers", ("v", "x"))) == '.metadata.finalizers[="x"]'
    assert path_string(make_path("spec", "args", 3)) == ".spec.args[3]"


def test_iteration_order_is_members_then_children():
    s = FieldSet.from_paths("spec.replicas", "metadata.labels.app", "spec", "kind")
    assert s.paths() == [".kind", ".spec", ".metadata.labels.app", ".spec.replicas"]


def test_difference_keeps_children_of_removed_members_recursive_difference_does_not():
    s = FieldSet.from_paths("spec", "spec.replicas", "status.x")
    drop = FieldSet.from_paths("spec", "status")
    assert s.difference(drop).paths() == [".spec.replicas", ".status.x"]
    assert s.recursive_difference(drop).paths() == []
    assert s.union(drop).paths() == [".spec", ".status", ".spec.replicas", ".status.x"]
    assert s.intersection(FieldSet.from_paths("spec.replicas", "other")).paths() == [".spec.replicas"]
    assert s.difference(s).empty() and not s.difference(s)


def test_leaves_and_equality():
    s = FieldSet.from_paths("a", "a.b", "c")
    assert s.leaves() == FieldSet.from_paths("a.b", "c")
    assert FieldSet.from_paths("x.y") == FieldSet.from_fields_v1({"f:x": {"f:y": {}}})


# ---------------------------------------------------------------- what an object sets
def test_object_field_set_by_schema():
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}, "finalizers": ["a", "b"], "annotations": {}},
        "spec": {
            "nodeSelector": {"disk": "ssd"},
            "containers": [{
                "name": "c", "image": "busybox", "args": ["sleep", "1"],
                "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                "resources": {},
            }],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
        },
    }
    doc = to_field_set(pod, POD).to_fields_v1()
    assert doc["f:metadata"] == {
        "f:annotations": {}, "f:finalizers": {'v:"a"': {}, 'v:"b"': {}}, "f:labels": {"f:app": {}}, "f:name": {},
    }
    c = doc["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert c == {
        ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
        "f:ports": {
            # a port without protocol is keyed by the protocol's default, as upstream does
            'k:{"containerPort":53,"protocol":"UDP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}},
            'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
        },
        "f:resources": {},
    }
    # PodSpec.nodeSelector is an atomic map, NodeSelector (in node affinity) an atomic struct
    assert doc["f:spec"]["f:nodeSelector"] == {}
    assert doc["f:spec"]["f:affinity"] == {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}}


def test_service_ports_are_keyed_by_port_and_protocol():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "x"}}}
    assert FieldSet.from_object(svc, SERVICE).to_fields_v1()["f:spec"] == {
        "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}},
        "f:selector": {},  # Service selector is an atomic map
    }


def test_null_and_empty_maps_are_leaves_empty_granular_lists_are_not():
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"labels": None},
         "spec": {"strategy": {}, "template": {"spec": {"containers": [], "tolerations": []}}}}
    assert to_field_set(d, DEPLOYMENT).paths() == [
        ".apiVersion", ".kind", ".metadata.labels", ".spec.strategy", ".spec.template.spec.tolerations",
    ]


def test_deduced_types_make_maps_granular_and_lists_atomic():
    t = deduced_type_info("example.com", "v1", "Widget")
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
           "spec": {"items": [{"name": "x"}], "size": {"w": 1}}}
    # every key of a deduced map is a member of its own (there are no declared fields)
    assert to_field_set(obj, t).to_fields_v1() == {
        "f:apiVersion": {}, "f:kind": {},
        "f:metadata": {".": {}, "f:labels": {".": {}, "f:a": {}}, "f:name": {}},
        "f:spec": {".": {}, "f:items": {}, "f:size": {".": {}, "f:w": {}}},
    }


def test_crd_schema_list_map_and_preserve_unknown_fields():
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "routes": {"type": "array", "x-kubernetes-list-type": "map",
                               "x-kubernetes-list-map-keys": ["host", "port"],
                               "items": {"type": "object", "properties": {
                                   "host": {"type": "string"}, "port": {"type": "integer", "default": 80},
                                   "weight": {"type": "integer"}}}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            },
        },
    }
    t = crd_type_info("example.com", "v1", "Route", schema)
    obj = {"apiVersion": "example.com/v1", "kind": "Route", "metadata": {"name": "r", "labels": {"x": "y"}},
           "spec": {"routes": [{"host": "a", "weight": 1}], "tags": ["t1"], "raw": {"any": {"thing": [1]}}}}
    doc = to_field_set(obj, t).to_fields_v1()
    assert doc["f:spec"] == {
        "f:raw": {"f:any": {".": {}, "f:thing": {}}},
        "f:routes": {'k:{"host":"a","port":80}': {".": {}, "f:host": {}, "f:weight": {}}},
        "f:tags": {'v:"t1"': {}},
    }
    assert doc["f:metadata"] == {"f:labels": {"f:x": {}}, "f:name": {}}
    assert value_pe("t1") in to_field_set(obj, t).children[make_path("spec")[0]].children[make_path("tags")[0]].members


def test_field_set_json_matches_json_dumps_of_the_document():
    s = to_field_set({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v", "a": "b"}},
                     type_info("", "v1", "ConfigMap"))
    assert json.loads(s.to_json()) == s.to_fields_v1()
    assert s.to_json() == '{"f:apiVersion":{},"f:data":{"f:a":{},"f:k":{}},"f:kind":{}}'
