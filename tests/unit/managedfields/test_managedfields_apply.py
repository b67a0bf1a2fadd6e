"""Server-side apply: merging, ownership, pruning, conflicts."""

from __future__ import annotations

import copy
import json

import pytest

from kybernetes.api.managedfields import (
    LAST_APPLIED,
    ApplyConflict,
    Conflict,
    FieldSet,
    ManagedFieldsError,
    apply,
    build_last_applied,
    conflict_causes,
    conflict_message,
    conflict_status,
    crd_type_info,
    deduced_type_info,
    merge,
    type_info,
    update_managed_fields,
)

DEPLOYMENT = type_info("apps", "v1", "Deployment")
CONFIGMAP = type_info("", "v1", "ConfigMap")
SERVICE = type_info("", "v1", "Service")
T0, T1, T2, T3 = (f"2024-05-01T10:00:0{i}Z" for i in range(4))


def deployment(**spec) -> dict:
    base = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25",
                                                  "ports": [{"containerPort": 80}]}]}},
        },
    }
    base["spec"].update(spec)
    return base


def persist(obj: dict) -> dict:
    """What the store would keep: a copy with a uid (an existing object)."""
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("uid", "0000-uid")
    return out


def fields_of(entries: list, manager: str) -> list[str]:
    for e in entries:
        if e["manager"] == manager:
            return FieldSet.from_fields_v1(e["fieldsV1"]).paths()
    raise AssertionError(f"no entry for {manager}")


def managers(entries: list) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in entries]


# ---------------------------------------------------------------- the documented example
def test_create_by_apply_gives_the_documented_entry():
    # the ConfigMap of the "Server-Side Apply" page (kubernetes.io), created by apply
    cfg = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
           "data": {"key": "some value"}}
    obj, entries = apply(None, cfg, "kubectl", types=CONFIGMAP, time=T0)
    assert entries == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}},
    }]
    assert obj["data"] == {"key": "some value"} and obj["metadata"]["managedFields"] == entries


def test_documented_update_by_another_manager_takes_the_changed_field():
    # second example of the page: kube-controller-manager updates data.key
    cfg = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
           "data": {"key": "some value"}}
    obj, _ = apply(None, cfg, "kubectl", types=CONFIGMAP, time=T0)
    live = persist(obj)
    new = copy.deepcopy(live)
    new["data"]["key"] = "new value"
    entries = update_managed_fields(live, new, "kube-controller-manager", types=CONFIGMAP, time=T1)
    assert entries == [
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:test-label": {}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": T1,
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:key": {}}}},
    ]
    # and the same change through apply would have conflicted
    with pytest.raises(ApplyConflict) as e:
        apply(persist(new), cfg, "kubectl", types=CONFIGMAP)
    assert e.value.message == \
        'Apply failed with 1 conflict: conflict with "kube-controller-manager" using v1: .data.key'


# ---------------------------------------------------------------- create / re-apply / prune
def test_create_via_apply_owns_only_the_config_and_list_map_keys():
    obj, entries = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    assert fields_of(entries, "kubectl") == [
        ".metadata.labels.app", ".spec.replicas", ".spec.selector", ".spec.template.metadata.labels.app",
        '.spec.template.spec.containers[name="nginx"]', '.spec.template.spec.containers[name="nginx"].image',
        '.spec.template.spec.containers[name="nginx"].name',
        '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"]',
        '.spec.template.spec.containers[name="nginx"].ports[containerPort=80,protocol="TCP"].containerPort',
    ]
    assert obj["spec"]["replicas"] == 3


def test_defaulter_runs_on_the_merged_object():
    def default(o: dict) -> None:
        o["spec"].setdefault("revisionHistoryLimit", 10)

    obj, entries = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0, default=default)
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert ".spec.revisionHistoryLimit" not in fields_of(entries, "kubectl")


def test_reapply_without_a_field_removes_it():
    obj, _ = apply(None, deployment(minReadySeconds=5, paused=False), "kubectl", types=DEPLOYMENT, time=T0)
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    obj, entries = apply(persist(obj), cfg, "kubectl", types=DEPLOYMENT, time=T1)
    assert "minReadySeconds" not in obj["spec"] and "paused" not in obj["spec"]
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    # drop the env var, a port and the label
    cfg2 = deployment()
    del cfg2["metadata"]["labels"]
    del cfg2["spec"]["template"]["spec"]["containers"][0]["ports"]
    obj, entries = apply(persist(obj), cfg2, "kubectl", types=DEPLOYMENT, time=T2)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in c and "ports" not in c
    assert "labels" not in obj["metadata"]
    assert entries[0]["time"] == T2


def test_removed_field_owned_by_someone_else_stays():
    obj, _ = apply(None, deployment(minReadySeconds=5), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    new = copy.deepcopy(live)
    new["spec"]["minReadySeconds"] = 7  # an updater takes it over
    update_managed_fields(live, new, "kubectl-edit", types=DEPLOYMENT, time=T1)
    obj, entries = apply(persist(new), deployment(), "kubectl", types=DEPLOYMENT, time=T2)
    assert obj["spec"]["minReadySeconds"] == 7
    assert fields_of(entries, "kubectl-edit") == [".spec.minReadySeconds"]


def test_fields_never_applied_are_not_removed():
    obj, _ = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    live["spec"]["progressDeadlineSeconds"] = 600  # a default nobody owns
    obj, _ = apply(live, deployment(), "kubectl", types=DEPLOYMENT, time=T1)
    assert obj["spec"]["progressDeadlineSeconds"] == 600


def test_no_op_apply_keeps_object_and_timestamps():
    obj, entries = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    again, entries2 = apply(live, deployment(), "kubectl", types=DEPLOYMENT, time=T3)
    assert entries2 == entries and again == live


# ---------------------------------------------------------------- two managers
def test_two_appliers_share_a_field_set_to_the_same_value():
    obj, _ = apply(None, deployment(), "alice", types=DEPLOYMENT, time=T0)
    bob_cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 3}}
    obj, entries = apply(persist(obj), bob_cfg, "bob", types=DEPLOYMENT, time=T1)
    assert ".spec.replicas" in fields_of(entries, "alice") and fields_of(entries, "bob") == [".spec.replicas"]
    # either one changing it now conflicts with the other
    with pytest.raises(ApplyConflict) as e:
        apply(persist(obj), deployment(replicas=5), "alice", types=DEPLOYMENT)
    assert e.value.conflicts == [Conflict("bob", ".spec.replicas", '{"manager":"bob","operation":"Apply"}',
                                          e.value.conflicts[0].elements)]
    assert e.value.message == 'Apply failed with 1 conflict: conflict with "bob": .spec.replicas'
    # alice drops replicas from her config: the value stays (bob still owns it)
    cfg = deployment()
    del cfg["spec"]["replicas"]
    obj, entries = apply(persist(obj), cfg, "alice", types=DEPLOYMENT, time=T2)
    assert obj["spec"]["replicas"] == 3
    assert ".spec.replicas" not in fields_of(entries, "alice")
    # now bob is the only owner and drops it too: it is removed
    bob_cfg["spec"] = {"paused": True}
    obj, entries = apply(persist(obj), bob_cfg, "bob", types=DEPLOYMENT, time=T3)
    assert "replicas" not in obj["spec"]


def test_conflict_force_takes_ownership():
    obj, _ = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    hpa = copy.deepcopy(live)
    hpa["spec"]["replicas"] = 7
    update_managed_fields(live, hpa, "kube-controller-manager", types=DEPLOYMENT, time=T1)
    assert fields_of(hpa["metadata"]["managedFields"], "kube-controller-manager") == [".spec.replicas"]
    with pytest.raises(ApplyConflict):
        apply(persist(hpa), deployment(), "kubectl", types=DEPLOYMENT)
    obj, entries = apply(persist(hpa), deployment(), "kubectl", types=DEPLOYMENT, force=True, time=T2)
    assert obj["spec"]["replicas"] == 3
    assert managers(entries) == [("kubectl", "Apply")]  # the controller's entry became empty


def test_update_after_apply_moves_ownership():
    obj, _ = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    entries = update_managed_fields(live, new, "kubectl-set", types=DEPLOYMENT, time=T1)
    assert fields_of(entries, "kubectl-set") == ['.spec.template.spec.containers[name="nginx"].image']
    assert '.spec.template.spec.containers[name="nginx"].image' not in fields_of(entries, "kubectl")
    with pytest.raises(ApplyConflict) as e:
        apply(persist(new), deployment(), "kubectl", types=DEPLOYMENT)
    assert e.value.causes == [{"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-set" using apps/v1',
                               "field": '.spec.template.spec.containers[name="nginx"].image'}]


# ---------------------------------------------------------------- conflict wording
def test_conflict_message_with_several_managers_and_fields():
    obj, _ = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    a = copy.deepcopy(live)
    a["spec"]["replicas"] = 1
    a["metadata"]["labels"]["app"] = "x"
    update_managed_fields(live, a, "zeta", types=DEPLOYMENT, time=T1)
    b = persist(a)
    b2 = copy.deepcopy(b)
    b2["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    update_managed_fields(b, b2, "alpha", types=DEPLOYMENT, subresource="status", time=T2)
    with pytest.raises(ApplyConflict) as e:
        apply(persist(b2), deployment(), "kubectl", types=DEPLOYMENT)
    assert e.value.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "alpha" with subresource "status" using apps/v1:\n'
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "zeta" using apps/v1:\n'
        "- .metadata.labels.app\n"
        "- .spec.replicas"
    )
    status = e.value.status()
    assert status["code"] == 409 and status["reason"] == "Conflict" and status["message"] == e.value.message
    assert [c["field"] for c in status["details"]["causes"]] == [
        '.spec.template.spec.containers[name="nginx"].image', ".metadata.labels.app", ".spec.replicas"]


def test_conflict_helpers_accept_plain_pairs():
    cs = [Conflict("m1", ".spec.replicas"), Conflict("m1", ".spec.paused")]
    assert conflict_message(cs) == 'Apply failed with 2 conflicts: conflicts with "m1":\n- .spec.replicas\n- .spec.paused'
    assert conflict_causes(cs[:1]) == [{"reason": "FieldManagerConflict", "message": 'conflict with "m1"',
                                        "field": ".spec.replicas"}]
    assert conflict_status(cs)["details"] == {"causes": conflict_causes(cs)}


# ---------------------------------------------------------------- merging by schema
def test_merge_list_maps_sets_and_atomic_values():
    live = deployment()
    live["metadata"]["finalizers"] = ["a", "b"]
    live["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    live["spec"]["template"]["spec"]["tolerations"] = [{"key": "k1"}]
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx", "finalizers": ["c", "a"]},
           "spec": {"selector": {"matchExpressions": []},
                    "template": {"spec": {"containers": [{"name": "new", "image": "x"},
                                                         {"name": "nginx", "image": "nginx:2"}],
                                          "tolerations": [{"key": "k2"}]}}}}
    out = merge(live, cfg, DEPLOYMENT)
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["new", "nginx", "side"]
    assert out["spec"]["template"]["spec"]["containers"][1]["ports"] == [{"containerPort": 80}]
    assert out["spec"]["template"]["spec"]["containers"][1]["image"] == "nginx:2"
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "k2"}]  # atomic list
    assert out["spec"]["selector"] == {"matchExpressions": []}  # atomic struct
    assert out["metadata"]["labels"] == {"app": "nginx"}  # granular map kept


def test_service_ports_merge_by_port_and_protocol():
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080},
                               {"port": 53, "protocol": "UDP"}]}}
    cfg = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80, "targetPort": 9090}]}}
    out = merge(live, cfg, SERVICE)
    assert out["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 9090}, {"port": 53, "protocol": "UDP"}]


def test_custom_resources_without_schema_are_deduced():
    t = deduced_type_info("example.com", "v1", "Widget")
    cfg = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
           "spec": {"list": [1, 2], "map": {"a": 1, "b": 2}}}
    obj, entries = apply(None, cfg, "m", types=t, time=T0)
    cfg2 = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"list": [3], "map": {"a": 1}}}
    obj, entries = apply(persist(obj), cfg2, "m", types=t, time=T1)
    assert obj["spec"] == {"list": [3], "map": {"a": 1}}  # lists replaced, map entries pruned
    assert entries[0]["fieldsV1"] == {"f:spec": {".": {}, "f:list": {}, "f:map": {".": {}, "f:a": {}}}}


def test_crd_schema_list_map_merge():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                  "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}}}}}}
    t = crd_type_info("example.com", "v1", "Thing", schema)
    obj, _ = apply(None, {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
                          "spec": {"items": [{"id": "a", "v": 1}]}}, "one", types=t, time=T0)
    obj, entries = apply(persist(obj), {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
                                        "spec": {"items": [{"id": "b", "v": 2}]}}, "two", types=t, time=T1)
    assert obj["spec"]["items"] == [{"id": "a", "v": 1}, {"id": "b", "v": 2}]
    assert fields_of(entries, "two") == ['.spec.items[id="b"]', '.spec.items[id="b"].id', '.spec.items[id="b"].v']
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"},
                     "spec": {"other": 1}}, "one", types=t)
    assert (e.value.code, e.value.reason) == (400, "BadRequest")
    assert e.value.message.endswith(".spec.other: field not declared in schema")


# ---------------------------------------------------------------- rejected configurations
def test_apply_rejects_wrong_kind_managed_fields_and_schema_errors():
    cfg = deployment()
    cfg["kind"] = "StatefulSet"
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, cfg, "m", types=DEPLOYMENT)
    assert (e.value.code, e.value.reason, e.value.message) == (400, "BadRequest",
                                                               "invalid object type: apps/v1, Kind=StatefulSet")
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, {"metadata": {"name": "x"}}, "m", types=CONFIGMAP)
    assert e.value.message == "invalid object type: /, Kind="
    cfg = deployment()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, cfg, "m", types=DEPLOYMENT)
    assert e.value.message == "metadata.managedFields must be nil"
    cfg = deployment(foo=1)
    cfg["metadata"]["namespace"] = "default"
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, cfg, "m", types=DEPLOYMENT)
    assert (e.value.code, e.value.message) == (400, "failed to create typed patch object "
                                               "(default/nginx; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema")
    cfg = deployment()
    cfg["spec"]["template"]["spec"]["containers"].append({"name": "nginx", "image": "again"})
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, cfg, "m", types=DEPLOYMENT)
    assert e.value.message.endswith(
        '.spec.template.spec.containers: duplicate entries for key [name="nginx"]')
    with pytest.raises(ManagedFieldsError) as e:
        apply(None, deployment(replicas="3"), "m", types=DEPLOYMENT)
    assert e.value.message.endswith(".spec.replicas: expected numeric (int or float), got string")


def test_status_in_a_main_resource_apply_is_not_owned():
    cfg = deployment()
    cfg["status"] = {"replicas": 10}
    _, entries = apply(None, cfg, "m", types=DEPLOYMENT, time=T0, ignored=FieldSet.from_paths("status"))
    assert "f:status" not in entries[0]["fieldsV1"]


# ---------------------------------------------------------------- client-side apply -> server-side apply
def csa_object() -> dict:
    """A deployment created by `kubectl apply` (client-side): the annotation and the
    kubectl-client-side-apply Update entry."""
    cfg = deployment()
    cfg["metadata"]["annotations"] = {}
    last = json.dumps(cfg, separators=(",", ":"), sort_keys=True) + "\n"
    obj = copy.deepcopy(cfg)
    obj["metadata"]["annotations"] = {LAST_APPLIED: last}
    update_managed_fields(None, obj, "kubectl-client-side-apply", types=DEPLOYMENT, time=T0)
    return persist(obj)


def test_kubectl_server_side_apply_takes_over_client_side_apply_fields():
    live = csa_object()
    cfg = deployment(replicas=8)
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    obj, entries = apply(live, cfg, "kubectl", types=DEPLOYMENT, time=T1)
    assert obj["spec"]["replicas"] == 8
    assert ".spec.replicas" not in fields_of(entries, "kubectl-client-side-apply")
    # the annotation now holds what was applied, so a later client-side apply still works
    assert json.loads(obj["metadata"]["annotations"][LAST_APPLIED])["spec"]["replicas"] == 8
    assert obj["metadata"]["annotations"][LAST_APPLIED] == build_last_applied(cfg)
    # other managers get no such pass
    with pytest.raises(ApplyConflict):
        apply(csa_object(), cfg, "my-tool", types=DEPLOYMENT)


def test_kubectl_takeover_stops_at_fields_changed_since_client_side_apply():
    live = csa_object()
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    update_managed_fields(live, scaled, "kubectl-scale", types=DEPLOYMENT, time=T1)
    with pytest.raises(ApplyConflict) as e:
        apply(persist(scaled), deployment(replicas=8), "kubectl", types=DEPLOYMENT)
    assert [c.path for c in e.value.conflicts] == [".spec.replicas"]
    assert e.value.conflicts[0].manager == "kubectl-scale"


def test_last_applied_is_go_json():
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a<b", "annotations": {LAST_APPLIED: "x"}},
           "data": {"z": "1", "a": "2"}}
    assert build_last_applied(cfg) == (
        '{"apiVersion":"v1","data":{"a":"2","z":"1"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"a\\u003cb"}}\n')


def test_apply_through_the_status_subresource():
    obj, _ = apply(None, deployment(), "kubectl", types=DEPLOYMENT, time=T0)
    live = persist(obj)
    cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
           "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]},
           "spec": {"replicas": 99}}
    obj, entries = apply(live, cfg, "my-controller", types=DEPLOYMENT, subresource="status", time=T1,
                         ignored=FieldSet.from_paths("spec", "metadata.labels"))
    e = [x for x in entries if x["manager"] == "my-controller"][0]
    assert (e["operation"], e["subresource"]) == ("Apply", "status")
    assert e["fieldsV1"] == {"f:status": {
        "f:conditions": {'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}
    # the spec change is no conflict (nobody may own spec through /status); the status
    # strategy would throw it away
    assert obj["spec"]["replicas"] == 99


def test_yaml_timestamps_are_kept_as_text():
    import datetime
    cfg = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "creationTimestamp": datetime.datetime(2024, 1, 2, 3, 4, 5)},
           "data": {"when": datetime.date(2024, 1, 2)}}
    obj, _ = apply(None, cfg, "m", types=CONFIGMAP, time=T0)
    assert obj["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z" and obj["data"]["when"] == "2024-01-02"


# ---------------------------------------------------------------- pruning nested associative lists
ROUTES = crd_type_info("example.com", "v1", "Router", {"type": "object", "properties": {"spec": {
    "type": "object", "properties": {"routes": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host"],
        "items": {"type": "object", "properties": {
            "host": {"type": "string"},
            "paths": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}}}}}})


def run_router(ops: list) -> dict:
    live = None
    for op, manager, routes in ops:
        body = {"apiVersion": "example.com/v1", "kind": "Router", "metadata": {"name": "r"}, "spec": {"routes": routes}}
        if op == "apply":
            live, _ = apply(live, body, manager, types=ROUTES, time=T0)
        else:
            new = copy.deepcopy(live)
            new["spec"]["routes"] = routes
            update_managed_fields(live, new, manager, types=ROUTES, time=T1)
            live = new
        live = persist(live)
    return live


def test_item_kept_by_another_applier_loses_only_the_pruned_subitems():
    live = run_router([
        ("apply", "one", [{"host": "a"}, {"host": "b", "paths": ["/x"]}]),
        ("apply", "two", [{"host": "b", "paths": ["/y"]}]),
        ("update", "ctl", [{"host": "a"}, {"host": "b", "paths": ["/x", "/y", "/z"]}]),
        ("apply", "one", [{"host": "a"}]),
    ])
    assert live["spec"]["routes"] == [{"host": "a"}, {"host": "b", "paths": ["/y", "/z"]}]
    assert fields_of(live["metadata"]["managedFields"], "ctl") == ['.spec.routes[host="b"].paths[="/z"]']


def test_item_nobody_else_keeps_goes_with_its_dangling_subitems():
    live = run_router([
        ("apply", "one", [{"host": "a"}, {"host": "b", "paths": ["/x"]}]),
        ("apply", "two", [{"host": "a", "paths": ["/w"]}]),
        ("update", "ctl", [{"host": "a", "paths": ["/w"]}, {"host": "b", "paths": ["/x", "/z"]}]),
        ("apply", "one", [{"host": "a"}]),
    ])
    # ctl owned only /z inside b; b itself was one's, so the whole item is pruned
    assert live["spec"]["routes"] == [{"host": "a", "paths": ["/w"]}]
    assert [e["manager"] for e in live["metadata"]["managedFields"]] == ["one", "two"]
