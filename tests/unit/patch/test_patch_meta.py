"""Patch metadata read from the 1.37 definitions shipped with kubernetes-validate."""

from __future__ import annotations

import pytest

from kybernetes.api.patch import (
    OpenAPIPatchSchema,
    PatchSchema,
    known_kinds,
    patch_schema_for,
    patch_schema_for_definition,
)


def pod_spec():
    return patch_schema_for("", "v1", "Pod").field("spec")


def container():
    return pod_spec().field("containers").items()


@pytest.mark.parametrize("path,merge_key,strategies", [
    (("containers",), "name", {"merge"}),
    (("initContainers",), "name", {"merge"}),
    (("volumes",), "name", {"merge", "retainKeys"}),
    (("imagePullSecrets",), "name", {"merge"}),
    (("tolerations",), "", set()),
    (("topologySpreadConstraints",), "topologyKey", {"merge"}),
])
def test_pod_spec_lists(path, merge_key, strategies):
    node = pod_spec()
    for name in path:
        node = node.field(name)
    assert node.merge_key == merge_key
    assert node.strategies == strategies


@pytest.mark.parametrize("name,merge_key", [
    ("env", "name"),
    ("ports", "containerPort"),
    ("volumeMounts", "mountPath"),
    ("volumeDevices", "devicePath"),
])
def test_container_lists(name, merge_key):
    node = container().field(name)
    assert (node.merge_key, node.strategies) == (merge_key, {"merge"})


def test_metadata_fields():
    meta = patch_schema_for("apps", "v1", "Deployment").field("metadata")
    assert meta.field("finalizers").strategies == {"merge"}
    assert meta.field("finalizers").merge_key == ""
    assert meta.field("ownerReferences").merge_key == "uid"
    assert meta.field("labels").strategies == frozenset()
    # Map values are described by additionalProperties.
    assert meta.field("labels").field("anything") is not None
    assert meta.field("managedFields").strategies == frozenset()


def test_map_and_struct_strategies():
    assert patch_schema_for("apps", "v1", "Deployment").field("spec").field("strategy").strategies == {"retainKeys"}
    pdb = patch_schema_for("policy", "v1", "PodDisruptionBudget")
    assert pdb.field("spec").field("selector").strategies == {"replace"}


def test_unknown_things_are_none():
    assert patch_schema_for("example.com", "v1", "Widget") is None
    assert patch_schema_for("apps", "v1", "Nope") is None
    assert pod_spec().field("noSuchField") is None
    raw = patch_schema_for("apps", "v1", "ControllerRevision").field("data")
    assert raw.field("x") is None


def test_kind_index():
    kinds = set(known_kinds())
    assert {("", "v1", "Pod"), ("apps", "v1", "Deployment"), ("batch", "v1", "Job")} <= kinds
    assert patch_schema_for("", "v1", "Pod").name == "io.k8s.api.core.v1.Pod"
    # Kinds several groups claim resolve to the definition named after them.
    assert patch_schema_for("", "v1", "DeleteOptions").name.endswith(".DeleteOptions")


def test_nodes_are_cached_and_satisfy_the_protocol():
    assert container() is container()
    assert patch_schema_for_definition("io.k8s.api.core.v1.Container") is container()
    assert isinstance(container(), PatchSchema)


def test_openapi_v3_style_refs():
    schema = OpenAPIPatchSchema.from_schema(
        {"properties": {"x": {"allOf": [{"$ref": "#/components/schemas/T"}],
                              "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "k"}}},
        {"T": {"properties": {"k": {"type": "string"}}}},
    )
    x = schema.field("x")
    assert (x.merge_key, x.strategies) == ("k", {"merge"})
    # A list schema without "items" describes its elements itself.
    assert x.items() is x
    assert x.field("k") is not None
