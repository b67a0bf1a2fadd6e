"""managedFields on ordinary writes: create, update, non-apply patch, subresources."""

from __future__ import annotations

import copy

from kybernetes.api.managedfields import (
    ANCIENT_CHANGES,
    FieldSet,
    apply,
    default_manager,
    revert_timestamp_only_changes,
    scale_entries_to_parent,
    scale_entries_to_subresource,
    type_info,
    update_managed_fields,
    validate_write_options,
)

DEPLOYMENT = type_info("apps", "v1", "Deployment")
CONFIGMAP = type_info("", "v1", "ConfigMap")
POD = type_info("", "v1", "Pod")
SCALE = type_info("autoscaling", "v1", "Scale")
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "2024-05-01T10:00:02Z"


def created_deployment() -> dict:
    """What `kubectl create deployment nginx --image=nginx` stores, after defaulting."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
                     "uid": "11111111-2222-3333-4444-555555555555", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "generation": 1},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "imagePullPolicy": "Always",
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler",
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {},
    }


def stored(obj: dict) -> dict:
    return copy.deepcopy(obj)


def fields_of(entries: list, manager: str, subresource: str = "") -> dict:
    for e in entries:
        if e["manager"] == manager and e.get("subresource", "") == subresource:
            return e["fieldsV1"]
    raise AssertionError(f"no entry for {manager!r}: {[e['manager'] for e in entries]}")


# ---------------------------------------------------------------- create
def test_create_owns_every_field_it_set_like_kubectl_create():
    obj = created_deployment()
    entries = update_managed_fields(None, obj, "kubectl-create", types=DEPLOYMENT, time=T0)
    assert obj["metadata"]["managedFields"] is entries
    # The shape real clusters show for `kubectl create deployment`: "." on what the Go
    # zero object lacks (labels, rollingUpdate, the container), not on spec/template/strategy.
    assert entries == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
                "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {
                        "f:containers": {'k:{"name":"nginx"}': {
                            ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                            "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                        "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
                        "f:terminationGracePeriodSeconds": {},
                    },
                },
            },
        },
    }]
    # key order as upstream serializes the entry
    assert list(entries[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]


def test_create_configmap_like_kubectl_create():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
          "data": {"redis.conf": "x"}}
    update_managed_fields(None, cm, "kubectl-create", types=CONFIGMAP, time=T0)
    assert cm["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {".": {}, "f:redis.conf": {}}}


def test_create_that_sets_nothing_ownable_has_no_entry():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    assert update_managed_fields(None, cm, "kubectl-create", types=CONFIGMAP) == []
    assert "managedFields" not in cm["metadata"]


# ---------------------------------------------------------------- update
def test_update_moves_changed_fields_to_the_writer_and_keeps_the_rest():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    new = stored(live)
    new["spec"]["replicas"] = 3
    new["metadata"]["labels"]["tier"] = "web"
    entries = update_managed_fields(live, new, "kubectl-edit", types=DEPLOYMENT, time=T1)
    assert [e["manager"] for e in entries] == ["kubectl-create", "kubectl-edit"]
    assert fields_of(entries, "kubectl-edit") == {"f:metadata": {"f:labels": {"f:tier": {}}}, "f:spec": {"f:replicas": {}}}
    create = FieldSet.from_fields_v1(fields_of(entries, "kubectl-create"))
    assert ".spec.replicas" not in create.paths()
    assert ".metadata.labels.app" in create.paths()
    assert entries[0]["time"] == T0  # untouched entries keep their time


def test_removed_fields_leave_every_manager():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    new = stored(live)
    del new["metadata"]["labels"]
    entries = update_managed_fields(live, new, "kubectl-edit", types=DEPLOYMENT, time=T1)
    assert [e["manager"] for e in entries] == ["kubectl-create"]  # the editor owns nothing
    assert "f:labels" not in fields_of(entries, "kubectl-create").get("f:metadata", {})


def test_same_manager_accumulates_and_no_op_keeps_time():
    live = created_deployment()
    update_managed_fields(None, live, "m", types=DEPLOYMENT, time=T0)
    new = stored(live)
    entries = update_managed_fields(live, new, "m", types=DEPLOYMENT, time=T1)
    assert entries == live["metadata"]["managedFields"]  # nothing changed, not even the time
    new2 = stored(new)
    new2["spec"]["paused"] = True
    entries = update_managed_fields(new, new2, "m", types=DEPLOYMENT, time=T2)
    assert len(entries) == 1 and entries[0]["time"] == T2
    assert "f:paused" in entries[0]["fieldsV1"]["f:spec"] and "f:replicas" in entries[0]["fieldsV1"]["f:spec"]


def test_managed_fields_sent_by_the_client_are_kept_or_ignored():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    # a client that does not know about managedFields (field absent) keeps the live ones
    new = stored(live)
    del new["metadata"]["managedFields"]
    assert update_managed_fields(live, new, "x", types=DEPLOYMENT, time=T1) == live["metadata"]["managedFields"]
    # a client may rewrite them explicitly
    new = stored(live)
    new["metadata"]["managedFields"] = [{"manager": "someone", "operation": "Update", "apiVersion": "apps/v1",
                                         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    entries = update_managed_fields(live, new, "x", types=DEPLOYMENT, time=T1)
    assert [e["manager"] for e in entries] == ["someone"]
    # unreadable ones fall back to the live object's
    new = stored(live)
    new["metadata"]["managedFields"] = [{"manager": "bad", "operation": "Nope"}]
    assert update_managed_fields(live, new, "x", types=DEPLOYMENT, time=T1) == live["metadata"]["managedFields"]


def test_reset_with_empty_list_or_empty_entry_stops_tracking_until_next_apply():
    for reset in ([], [{}]):
        live = created_deployment()
        update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
        new = stored(live)
        new["metadata"]["managedFields"] = reset
        new["spec"]["replicas"] = 5
        assert update_managed_fields(live, new, "kubectl-edit", types=DEPLOYMENT, time=T1) == []
        assert "managedFields" not in new["metadata"]
        # later updates are not tracked either
        newer = stored(new)
        newer["spec"]["replicas"] = 6
        assert update_managed_fields(new, newer, "kubectl-edit", types=DEPLOYMENT, time=T1) == []
        # an apply records what exists as "before-first-apply", then the applier's fields
        cfg = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
               "spec": {"paused": True}}
        _, entries = apply(newer, cfg, "ssa", types=DEPLOYMENT, time=T2)
        assert [(e["manager"], e["operation"]) for e in entries] == [("ssa", "Apply"), ("before-first-apply", "Update")]
        assert "f:replicas" in fields_of(entries, "before-first-apply")["f:spec"]


def test_status_subresource_writes_are_separate_entries_and_ignore_request_managed_fields():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    new = stored(live)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    new["metadata"]["managedFields"] = []  # ignored through a subresource
    new["spec"]["replicas"] = 9  # reset by the status strategy: nobody may own it through /status
    entries = update_managed_fields(live, new, "kube-controller-manager", types=DEPLOYMENT, subresource="status",
                                    time=T1, ignored=FieldSet.from_paths("spec", "metadata.labels"))
    e = [x for x in entries if x["manager"] == "kube-controller-manager"][0]
    assert e["subresource"] == "status" and list(e)[-1] == "subresource"
    assert e["fieldsV1"] == {"f:status": {
        "f:conditions": {".": {}, 'k:{"type":"Available"}': {".": {}, "f:status": {}, "f:type": {}}},
        "f:replicas": {}}}
    assert "f:replicas" in fields_of(entries, "kubectl-create")["f:spec"]


def test_main_resource_writes_do_not_own_status():
    live = created_deployment()
    new = stored(live)
    new["status"] = {"replicas": 3}
    entries = update_managed_fields(None, new, "kubectl-create", types=DEPLOYMENT, time=T0,
                                    ignored=FieldSet.from_paths("status"))
    assert "f:status" not in entries[0]["fieldsV1"]


def test_more_than_ten_updaters_fold_the_oldest_into_ancient_changes():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u", "labels": {}}}
    update_managed_fields(None, pod, "creator", types=POD, time="2024-01-01T00:00:00Z")
    for i in range(12):
        new = stored(pod)
        new["metadata"]["labels"][f"l{i}"] = "x"
        update_managed_fields(pod, new, f"m{i:02d}", types=POD, time=f"2024-01-01T00:00:{i + 1:02d}Z")
        pod = new
    entries = pod["metadata"]["managedFields"]
    assert len(entries) == 10
    assert entries[0]["manager"] == ANCIENT_CHANGES
    ancient = FieldSet.from_fields_v1(entries[0]["fieldsV1"]).paths()
    assert ".metadata.labels.l0" in ancient and ".metadata.labels.l1" in ancient and ".metadata.labels.l2" in ancient
    assert [e["manager"] for e in entries[1:]] == [f"m{i:02d}" for i in range(3, 12)]


def test_failures_keep_the_live_managed_fields():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    new = stored(live)
    new["spec"]["template"]["spec"]["containers"].append({"image": "no-name"})  # list-map item without its key
    assert update_managed_fields(live, new, "x", types=DEPLOYMENT, time=T1) == live["metadata"]["managedFields"]


# ---------------------------------------------------------------- manager names and options
def test_default_manager_is_the_user_agent_product():
    assert default_manager("kubectl/v1.37.0 (linux/amd64) kubernetes/abcdef0") == "kubectl"
    assert default_manager("Go-http-client/2.0") == "Go-http-client"
    assert default_manager("OpenAPI-Generator/33.1.0/python") == "OpenAPI-Generator"
    assert default_manager("kube-controller-manager/v1.37.1 (linux/amd64) kubernetes/x/system:serviceaccount:a") \
        == "kube-controller-manager"
    assert default_manager("") == ""
    assert default_manager("a\tb\x00c/1") == "abc"
    assert default_manager("é" * 100) == "é" * 64  # 128 bytes at most


def test_kubectl_client_side_apply_is_just_a_manager_name():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    entries = update_managed_fields(None, cm, "kubectl-client-side-apply", types=CONFIGMAP, time=T0)
    assert entries[0]["manager"] == "kubectl-client-side-apply" and entries[0]["operation"] == "Update"
    unnamed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    assert update_managed_fields(None, unnamed, "", types=CONFIGMAP, time=T0)[0]["manager"] == "unknown"


def test_write_options_validation():
    assert validate_write_options("", apply=True, patch=True) == [
        ("FieldValueRequired", "fieldManager", "Required value: is required for apply patch")]
    assert validate_write_options("x", force=True, patch=True) == [
        ("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch")]
    assert validate_write_options("m" * 129)[0][0] == "FieldValueTooLong"
    assert validate_write_options("a\x01") == [
        ("FieldValueInvalid", "fieldManager", 'Invalid value: "a\\x01": invalid character U+0001 (at position 1)')]
    assert validate_write_options("kubectl", apply=True, force=True, patch=True) == []


# ---------------------------------------------------------------- no-op writes and /scale
def test_timestamp_only_changes_are_reverted():
    old = created_deployment()
    update_managed_fields(None, old, "m", types=DEPLOYMENT, time=T0)
    new = stored(old)
    new["metadata"]["managedFields"][0]["time"] = T2
    assert revert_timestamp_only_changes(new, old)
    assert new == old
    changed = stored(old)
    changed["metadata"]["managedFields"][0]["time"] = T2
    changed["spec"]["replicas"] = 7
    assert not revert_timestamp_only_changes(changed, old)


def test_scale_subresource_round_trip():
    live = created_deployment()
    update_managed_fields(None, live, "kubectl-create", types=DEPLOYMENT, time=T0)
    parent = live["metadata"]["managedFields"]
    scale_entries = scale_entries_to_subresource(parent)
    assert scale_entries == [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "autoscaling/v1",
                              "time": T0, "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    old_scale = {"apiVersion": "autoscaling/v1", "kind": "Scale",
                 "metadata": {"name": "nginx", "uid": "u", "managedFields": scale_entries},
                 "spec": {"replicas": 1}, "status": {"replicas": 1}}
    new_scale = stored(old_scale)
    new_scale["spec"]["replicas"] = 4
    new_scale_entries = update_managed_fields(old_scale, new_scale, "kubectl-scale", types=SCALE,
                                              subresource="scale", time=T1)
    out = scale_entries_to_parent(parent, new_scale_entries, "apps/v1")
    # upstream gives the new scale entry the parent's time for that manager: none, so it sorts first
    assert [(e["manager"], e.get("subresource", ""), e.get("time")) for e in out] == [
        ("kubectl-scale", "scale", None), ("kubectl-create", "", T0)]
    assert "f:replicas" not in fields_of(out, "kubectl-create")["f:spec"]
    assert fields_of(out, "kubectl-scale", "scale") == {"f:spec": {"f:replicas": {}}}
