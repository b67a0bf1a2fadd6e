"""Strategic merge patch against the real 1.37 schema.

Every expected result below was cross-checked with ``kubectl patch --local --type strategic``
(kubectl 1.37, which runs the same apimachinery code as the API server).
"""

from __future__ import annotations

import copy

import pytest

from kybernetes.api.patch import (
    OpenAPIPatchSchema,
    PatchError,
    apply_merge_patch,
    apply_strategic_merge_patch,
    patch_schema_for,
)


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"app": "x", "tier": "web"}, "finalizers": ["a.io/f1", "b.io/f2"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "x"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "a:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"}],
                        },
                        {"name": "b", "image": "b:1"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {"medium": "Memory"}}],
                    "tolerations": [{"key": "k1", "operator": "Exists"}, {"key": "k2", "operator": "Exists"}],
                },
            },
        },
    }


DEPLOYMENT = patch_schema_for("apps", "v1", "Deployment")


def smp(patch: dict, doc: dict | None = None) -> dict:
    doc = deployment() if doc is None else doc
    before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(doc, patch, DEPLOYMENT)
    assert (doc, patch) == before  # inputs untouched
    return out


def pod_spec(patch_spec: dict) -> dict:
    return {"spec": {"template": {"spec": patch_spec}}}


def containers(out: dict) -> list:
    return out["spec"]["template"]["spec"]["containers"]


def env(out: dict) -> list:
    return containers(out)[0]["env"]


# --- lists merged by key ---------------------------------------------------------------------

def test_add_env_var_by_name():
    out = smp(pod_spec({"containers": [{"name": "a", "env": [{"name": "D", "value": "4"}]}]}))
    # Upstream puts elements new to a merging list before the untouched ones.
    assert env(out) == [{"name": "D", "value": "4"}, {"name": "A", "value": "1"},
                        {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert containers(out)[1] == {"name": "b", "image": "b:1"}


def test_replace_env_var_value_keeps_position():
    out = smp(pod_spec({"containers": [{"name": "a", "env": [{"name": "B", "value": "new"}]}]}))
    assert env(out) == [{"name": "A", "value": "1"}, {"name": "B", "value": "new"}, {"name": "C", "value": "3"}]


def test_remove_env_var_with_delete_directive():
    out = smp(pod_spec({"containers": [{"name": "a", "env": [{"name": "B", "$patch": "delete"}]}]}))
    assert env(out) == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]


def test_delete_directive_for_missing_element_is_a_no_op():
    assert smp(pod_spec({"containers": [{"name": "zz", "$patch": "delete"}]})) == deployment()


def test_null_member_inside_merged_element():
    out = smp(pod_spec({"containers": [{"name": "a", "env": [{"name": "B", "value": None}]}]}))
    assert env(out)[1] == {"name": "B"}


def test_remove_container_with_set_element_order():
    out = smp(pod_spec({"$setElementOrder/containers": [{"name": "a"}],
                        "containers": [{"$patch": "delete", "name": "b"}]}))
    assert [c["name"] for c in containers(out)] == ["a"]


def test_add_container_with_set_element_order_appends():
    out = smp(pod_spec({"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                        "containers": [{"name": "c", "image": "c:1"}]}))
    assert [c["name"] for c in containers(out)] == ["a", "b", "c"]


def test_add_container_without_order_goes_first():
    out = smp(pod_spec({"containers": [{"name": "c", "image": "c:1"}]}))
    assert [c["name"] for c in containers(out)] == ["c", "a", "b"]


def test_patch_order_interleaves_with_original_order():
    out = smp(pod_spec({"containers": [{"name": "a", "image": "a:3"}, {"name": "c", "image": "c"}, {"name": "d", "image": "d"}]}))
    assert [c["name"] for c in containers(out)] == ["a", "c", "d", "b"]
    assert containers(out)[0]["image"] == "a:3"


def test_set_element_order_reorders_env():
    out = smp(pod_spec({"containers": [{"name": "a", "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]}]}))
    assert [e["name"] for e in env(out)] == ["C", "A", "B"]


def test_set_element_order_with_server_only_elements():
    # kubectl apply: the live object has an env var the applied config does not know.
    doc = deployment()
    containers(doc)[0]["env"].insert(1, {"name": "INJECTED", "value": "x"})
    out = smp(pod_spec({"containers": [{
        "name": "a",
        "$setElementOrder/env": [{"name": "A"}, {"name": "C"}, {"name": "D"}],
        "env": [{"name": "D", "value": "4"}, {"$patch": "delete", "name": "B"}],
    }]}), doc)
    assert [e["name"] for e in env(out)] == ["A", "INJECTED", "C", "D"]


def test_set_element_order_must_agree_with_patch_order():
    with pytest.raises(PatchError) as err:
        smp(pod_spec({"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                      "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}))
    assert (err.value.code, err.value.reason) == (400, "BadRequest")
    assert "doesn't match $setElementOrder list" in err.value.message


def test_ports_merge_by_container_port():
    out = smp(pod_spec({"containers": [{"name": "a", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 8080}]}]}))
    assert containers(out)[0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 443, "protocol": "TCP", "name": "https"},
        {"containerPort": 8080},
    ]


def test_volume_mounts_merge_by_mount_path():
    out = smp(pod_spec({"containers": [{"name": "a", "volumeMounts": [{"mountPath": "/cache", "readOnly": True}]}]}))
    assert containers(out)[0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "cache", "mountPath": "/cache", "readOnly": True},
    ]


def test_set_image_by_container_name():
    out = smp(pod_spec({"containers": [{"name": "b", "image": "b:2"}]}))
    assert [c["image"] for c in containers(out)] == ["a:1", "b:2"]


def test_missing_merge_key_is_an_error():
    with pytest.raises(PatchError) as err:
        smp(pod_spec({"containers": [{"image": "q"}]}))
    assert (err.value.code, err.value.reason) == (400, "BadRequest")
    assert err.value.message == "map: map[image:q] does not contain declared merge key: name"


# --- atomic lists and maps -------------------------------------------------------------------

def test_tolerations_are_replaced():
    out = smp(pod_spec({"tolerations": [{"key": "k3", "operator": "Exists"}]}))
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "k3", "operator": "Exists"}]


def test_labels_merge_and_null_deletes():
    out = smp({"metadata": {"labels": {"tier": None, "env": "prod"}}})
    assert out["metadata"]["labels"] == {"app": "x", "env": "prod"}


def test_null_deletes_a_field():
    out = smp({"spec": {"strategy": None, "paused": True}})
    assert "strategy" not in out["spec"] and out["spec"]["paused"] is True


def test_new_subtree_drops_nulls_and_directives():
    out = smp(pod_spec({"affinity": {"nodeAffinity": {"x": None, "y": {"$patch": "delete"}, "z": [1, {"$patch": "replace"}]}}}))
    assert out["spec"]["template"]["spec"]["affinity"] == {"nodeAffinity": {"z": [1]}}


# --- directives ------------------------------------------------------------------------------

def test_patch_replace_on_a_map():
    out = smp({"metadata": {"labels": {"$patch": "replace", "new": "1"}}})
    assert out["metadata"]["labels"] == {"new": "1"}


def test_patch_delete_on_a_map_empties_it():
    out = smp({"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_patch_replace_on_a_list():
    out = smp(pod_spec({"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}))
    assert containers(out) == [{"name": "z", "image": "z"}]


def test_patch_replace_on_the_whole_object():
    out = smp({"$patch": "replace", "metadata": {"name": "y"}})
    assert out == {"metadata": {"name": "y"}}


@pytest.mark.parametrize("patch,message", [
    ({"metadata": {"labels": {"$patch": "merge", "x": "y"}}}, "unknown patch type: merge in map: map[$patch:merge x:y]"),
    ({"metadata": {"labels": {"$patch": "foo"}}}, "unknown patch type: foo in map: map[$patch:foo]"),
    (pod_spec({"containers": [{"name": "a", "$patch": "merge"}]}), "merging lists cannot yet be specified in the patch"),
])
def test_unsupported_directives(patch, message):
    with pytest.raises(PatchError) as err:
        smp(patch)
    assert (err.value.code, err.value.message) == (400, message)


def test_primitive_list_with_merge_strategy_is_unioned():
    out = smp({"metadata": {"finalizers": ["c.io/f3", "a.io/f1"]}})
    assert out["metadata"]["finalizers"] == ["c.io/f3", "a.io/f1", "b.io/f2"]


def test_delete_from_primitive_list():
    out = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/f1", "zz"]}})
    assert out["metadata"]["finalizers"] == ["b.io/f2"]


def test_delete_from_missing_primitive_list_adds_nothing():
    doc = deployment()
    del doc["metadata"]["finalizers"]
    assert "finalizers" not in smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, doc)["metadata"]


def test_set_element_order_on_primitive_list():
    out = smp({"metadata": {"$setElementOrder/finalizers": ["b.io/f2", "c.io/f3", "a.io/f1"], "finalizers": ["c.io/f3"]}})
    assert out["metadata"]["finalizers"] == ["b.io/f2", "c.io/f3", "a.io/f1"]


def test_retain_keys_switches_volume_source():
    out = smp(pod_spec({
        "$setElementOrder/volumes": [{"name": "data"}, {"name": "cache"}],
        "volumes": [{"$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/tmp"}, "name": "data"}],
    }))
    assert out["spec"]["template"]["spec"]["volumes"] == [
        {"name": "data", "hostPath": {"path": "/tmp"}},
        {"name": "cache", "emptyDir": {"medium": "Memory"}},
    ]


def test_retain_keys_on_deployment_strategy():
    out = smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("patch,message", [
    (pod_spec({"volumes": [{"$retainKeys": ["name"], "hostPath": {"path": "/tmp"}, "name": "data"}]}),
     "invalid patch format of retainKeys"),
    ({"spec": {"strategy": {"$retainKeys": "type"}}}, "invalid patch format of retainKeys"),
    ({"metadata": {"$setElementOrderfinalizers": ["a"]}}, "invalid patch format of setElementOrder list"),
    ({"metadata": {"$deleteFromPrimitiveList": ["a"]}}, "invalid patch format of primitive list"),
])
def test_bad_directive_formats_are_400(patch, message):
    with pytest.raises(PatchError) as err:
        smp(patch)
    assert (err.value.code, err.value.reason, err.value.message) == (400, "BadRequest", message)


def test_mixed_element_types():
    with pytest.raises(PatchError) as err:
        smp({"metadata": {"finalizers": [1]}})
    assert (err.value.code, err.value.reason) == (400, "BadRequest")
    assert err.value.message == "list element types are not identical: [[a.io/f1 b.io/f2] [1]]"


def test_list_of_lists_is_422():
    doc = deployment()
    del doc["metadata"]["finalizers"]
    doc["metadata"]["finalizers"] = [["x"]]
    with pytest.raises(PatchError) as err:
        smp({"metadata": {"finalizers": [["y"]]}}, doc)
    assert err.value.code == 422


def test_patch_must_be_an_object():
    with pytest.raises(PatchError) as err:
        smp([{"op": "add"}])  # type: ignore[arg-type]
    assert err.value.code == 400
    assert smp(None) == deployment()  # type: ignore[arg-type]


# --- no schema ---------------------------------------------------------------------------------

def test_unknown_kind_falls_back_to_merge_semantics():
    assert patch_schema_for("example.com", "v1", "Widget") is None
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "1"}},
              "spec": {"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}], "cfg": {"x": 1, "y": 2}}}
    patch = {"metadata": {"labels": {"b": "2"}}, "spec": {"items": [{"name": "a", "v": 9}], "cfg": {"y": None, "z": 3}}}
    out = apply_strategic_merge_patch(widget, patch, None)
    assert out == apply_merge_patch(widget, patch)
    assert out["spec"] == {"items": [{"name": "a", "v": 9}], "cfg": {"x": 1, "z": 3}}


def test_free_form_fields_merge_without_strategies():
    # ControllerRevision.data is a RawExtension: no field metadata below it. (Upstream's
    # struct lookup errors out there; merge semantics are the useful reading.)
    revision = patch_schema_for("apps", "v1", "ControllerRevision")
    doc = {"revision": 1, "data": {"l": [1, 2], "m": {"a": 1}, "s": "x"}}
    patch = {"data": {"l": [3], "m": {"b": 2}, "s": None}}
    out = apply_strategic_merge_patch(doc, patch, revision)
    assert out == {"revision": 1, "data": {"l": [3], "m": {"a": 1, "b": 2}}}


def test_custom_schema():
    schema = OpenAPIPatchSchema.from_schema(
        {"properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"},
                                  "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "id"}}},
        {"Item": {"properties": {"id": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"},
                                                                      "x-kubernetes-patch-strategy": "merge"}}}},
    )
    doc = {"items": [{"id": 1, "tags": ["a"]}, {"id": 2}]}
    out = apply_strategic_merge_patch(doc, {"items": [{"id": 1, "tags": ["b"]}]}, schema)
    assert out == {"items": [{"id": 1, "tags": ["b", "a"]}, {"id": 2}]}


# --- recorded kubectl traffic ------------------------------------------------------------------

# The object served to `kubectl edit deployment web` (kubectl 1.37) and the exact patch it sent
# after the editor renamed env B to X, changed the image, added a port, removed the sidecar,
# removed a label, switched the volume to hostPath and the strategy to Recreate.
EDIT_ORIGINAL = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "uid": "1111", "resourceVersion": "5",
                 "labels": {"app": "web", "tier": "front"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                 "containers": [
                     {"name": "app", "image": "app:1",
                      "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                      "ports": [{"containerPort": 80, "protocol": "TCP"}],
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                     {"name": "sidecar", "image": "side:1"}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}}},
}
EDIT_PATCH = {
    "metadata": {"labels": {"tier": None}},
    "spec": {
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "$setElementOrder/volumes": [{"name": "data"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "A"}, {"name": "X"}, {"name": "C"}],
                 "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 8080}],
                 "env": [{"name": "X", "value": "9"}, {"$patch": "delete", "name": "B"}],
                 "image": "app:2", "name": "app",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                {"$patch": "delete", "name": "sidecar"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "emptyDir": None, "hostPath": {"path": "/srv"}, "name": "data"}],
        }},
    },
}
EDIT_RESULT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "uid": "1111", "resourceVersion": "5", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "strategy": {"type": "Recreate"},
             "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                 "containers": [
                     {"name": "app", "image": "app:2",
                      "env": [{"name": "A", "value": "1"}, {"name": "X", "value": "9"}, {"name": "C", "value": "3"}],
                      "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080, "protocol": "TCP"}],
                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "hostPath": {"path": "/srv"}}]}}},
}


def test_recorded_kubectl_edit_patch():
    assert apply_strategic_merge_patch(EDIT_ORIGINAL, EDIT_PATCH, DEPLOYMENT) == EDIT_RESULT


# The patch `kubectl apply` (client side) sent for a changed config: a label added, env B
# removed and C added, a port added, a mount and a volume removed, a volume switched to
# hostPath, and tolerations dropped from the config. The live object carries server-set
# defaults and an env var (INJECTED) the config never had.
APPLY_PATCH = {
    "metadata": {"labels": {"team": "blue"}},
    "spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "$setElementOrder/volumes": [{"name": "data"}],
        "containers": [{
            "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 9090}],
            "$setElementOrder/volumeMounts": [{"mountPath": "/data"}],
            "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
            "name": "app",
            "ports": [{"containerPort": 9090}],
            "volumeMounts": [{"$patch": "delete", "mountPath": "/tmp"}]}],
        "tolerations": None,
        "volumes": [{"$retainKeys": ["hostPath", "name"], "emptyDir": None, "hostPath": {"path": "/srv"}, "name": "data"},
                    {"$patch": "delete", "name": "tmp"}],
    }}},
}


def test_recorded_kubectl_apply_patch():
    live = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "containers": [{"name": "app", "image": "app:1", "imagePullPolicy": "IfNotPresent",
                                     "env": [{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "x"}, {"name": "B", "value": "2"}],
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}]}],
                     "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}],
                     "restartPolicy": "Always"}}},
    }
    out = apply_strategic_merge_patch(live, APPLY_PATCH, DEPLOYMENT)
    spec = out["spec"]["template"]["spec"]
    assert out["metadata"]["labels"] == {"app": "web", "team": "blue"}
    assert spec["containers"] == [{
        "name": "app", "image": "app:1", "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "x"}, {"name": "C", "value": "3"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 9090}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }]
    assert spec["volumes"] == [{"name": "data", "hostPath": {"path": "/srv"}}]
    assert "tolerations" not in spec and spec["restartPolicy"] == "Always"
    assert out["spec"]["strategy"] == live["spec"]["strategy"]
