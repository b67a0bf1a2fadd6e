"""Loading the 1.37 definitions and converting them to OpenAPI form."""

from __future__ import annotations

from kybernetes.api import schema


def test_raw_definitions_load() -> None:
    raw = schema.raw_definitions()
    assert len(raw) > 800
    assert "io.k8s.api.apps.v1.Deployment" in raw
    assert raw is schema.raw_definitions()  # loaded once


def test_v2_conversion_refs_types_and_extensions() -> None:
    defs = schema.definitions("v2")
    dep = defs["io.k8s.api.apps.v1.Deployment"]
    assert dep["type"] == "object"
    assert dep["properties"]["spec"] == {
        "$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec",
        "description": "Specification of the desired behavior of the Deployment.",
    }
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    # kubernetes-validate pins apiVersion/kind with enums; upstream documents have none.
    assert dep["properties"]["apiVersion"]["type"] == "string"
    assert "enum" not in dep["properties"]["apiVersion"]
    spec = defs["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["replicas"] == {
        "description": spec["properties"]["replicas"]["description"],
        "format": "int32",
        "type": "integer",
    }
    assert spec["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    labels = defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["labels"]
    assert labels["type"] == "object" and labels["additionalProperties"]["type"] == "string"


def test_special_scalar_types_match_upstream_shapes() -> None:
    v2, v3 = schema.definitions("v2"), schema.definitions("v3")
    ios = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    qty = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    time = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
    assert {k: v2[ios][k] for k in ("type", "format")} == {"type": "string", "format": "int-or-string"}
    assert v2[qty]["type"] == "string" and "format" not in v2[qty]
    assert {k: v2[time][k] for k in ("type", "format")} == {"type": "string", "format": "date-time"}
    assert v3[ios]["format"] == "int-or-string"
    assert v3[ios]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert v3[qty]["oneOf"] == [{"type": "string"}, {"type": "number"}]
    assert v3[time]["type"] == "string"


def test_v3_wraps_ref_siblings_in_allof() -> None:
    v3 = schema.definitions("v3")
    spec = v3["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert spec["description"].startswith("Specification")
    assert "$ref" not in spec
    items = v3["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]
    assert items == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


def test_definition_for() -> None:
    assert schema.definition_for("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schema.definition_for("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema.definition_for("", "v1", "Status") == "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
    assert schema.definition_for("apps", "v1", "DeleteOptions") == "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    assert schema.definition_for("apiregistration.k8s.io", "v1", "APIService") == \
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIService"
    assert schema.definition_for("apps", "v1", "Nope") is None


def test_refs_closure() -> None:
    names = schema.refs_closure(["io.k8s.api.apps.v1.Deployment"])
    assert "io.k8s.api.core.v1.Container" in names
    assert "io.k8s.apimachinery.pkg.util.intstr.IntOrString" in names
    assert "io.k8s.api.batch.v1.Job" not in names


def test_patch_meta_lists_structs_maps() -> None:
    pod_spec = "io.k8s.api.core.v1.PodSpec"
    c = schema.patch_meta(pod_spec, "containers")
    assert c is not None
    assert (c.shape, c.elem_shape, c.ref) == ("list", "struct", "io.k8s.api.core.v1.Container")
    assert (c.strategies, c.merge_key, c.list_type, c.list_map_keys) == (("merge",), "name", "map", ("name",))
    v = schema.patch_meta(pod_spec, "volumes")
    assert v is not None and v.strategies == ("merge", "retainKeys") and v.strategy == "merge,retainKeys"
    ports = schema.patch_meta(pod_spec, "containers.ports")
    assert ports is not None
    assert ports.merge_key == "containerPort" and ports.list_map_keys == ("containerPort", "protocol")
    assert ports.ref == "io.k8s.api.core.v1.ContainerPort"
    assert schema.patch_meta(pod_spec, ["containers", "args"]).elem_shape == "scalar"  # type: ignore[union-attr]
    strategy = schema.patch_meta("io.k8s.api.apps.v1.DeploymentSpec", "strategy")
    assert strategy is not None
    assert (strategy.shape, strategy.ref, strategy.strategies) == ("struct", "io.k8s.api.apps.v1.DeploymentStrategy", ("retainKeys",))
    selector = schema.patch_meta("io.k8s.api.apps.v1.DeploymentSpec", "selector")
    assert selector is not None and selector.map_type == "atomic"
    labels = schema.patch_meta("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "labels")
    assert labels is not None and (labels.shape, labels.elem_shape, labels.ref) == ("map", "scalar", None)
    limits = schema.patch_meta("io.k8s.api.core.v1.ResourceRequirements", "limits")
    assert limits is not None and (limits.shape, limits.elem_shape) == ("map", "scalar")
    node_sel = schema.patch_meta(pod_spec, "nodeSelector")
    assert node_sel is not None and node_sel.map_type == "atomic"
    finalizers = schema.patch_meta("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers")
    assert finalizers is not None and finalizers.list_type == "set" and finalizers.strategies == ("merge",)
    assert schema.patch_meta(pod_spec, "nope") is None
    assert schema.patch_meta(pod_spec, "containers.image.x") is None
    raw = schema.patch_meta("io.k8s.api.apps.v1.ControllerRevision", "data")
    assert raw is not None and raw.shape == "any"
