"""What DELETE answers, as upstream's generic store: the deleted object for kinds whose storage
returns it (ReturnDeletedObject), the object while deletion is pending, a Status naming the
object otherwise, and the listed objects for a collection delete."""

from __future__ import annotations

import asyncio

from apiserver_helpers import uniq


async def test_immediate_delete_answers_a_status_with_details(api, ns):
    cm = await api.configmap(ns)
    name = cm["metadata"]["name"]
    st = (await api.delete(f"/api/v1/namespaces/{ns}/configmaps/{name}")).expect(200)
    # details.kind is the resource, not the kind (upstream finalizeDelete); no code, no group for core
    assert st == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": {"name": name, "kind": "configmaps", "uid": cm["metadata"]["uid"]}}
    (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")).status_obj(404, "NotFound")

    role = (await api.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
        "rules": []})).expect(201)
    st = (await api.delete(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/r")).expect(200)
    assert st["details"] == {"name": "r", "group": "rbac.authorization.k8s.io", "kind": "roles",
                             "uid": role["metadata"]["uid"]}


async def test_kinds_that_return_the_deleted_object(api, ns):
    svc = (await api.post(f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]}})).expect(201)
    gone = (await api.delete(f"/api/v1/namespaces/{ns}/services/web")).expect(200)
    assert gone["kind"] == "Service" and gone["metadata"]["uid"] == svc["metadata"]["uid"]
    assert gone["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert "deletionTimestamp" not in gone["metadata"]
    (await api.get(f"/api/v1/namespaces/{ns}/services/web")).status_obj(404, "NotFound")

    (await api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})).expect(201)
    gone = (await api.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/robot")).expect(200)
    assert (gone["kind"], gone["metadata"]["name"]) == ("ServiceAccount", "robot")

    sc, drv = uniq("sc"), uniq("drv")
    (await api.post("/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
        "provisioner": "example.com/p"})).expect(201)
    gone = (await api.delete(f"/apis/storage.k8s.io/v1/storageclasses/{sc}")).expect(200)
    assert (gone["kind"], gone["apiVersion"], gone["provisioner"]) == ("StorageClass", "storage.k8s.io/v1",
                                                                       "example.com/p")
    (await api.post("/apis/storage.k8s.io/v1/csidrivers", {
        "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": drv}, "spec": {}})).expect(201)
    gone = (await api.delete(f"/apis/storage.k8s.io/v1/csidrivers/{drv}")).expect(200)
    assert gone["kind"] == "CSIDriver"


async def test_dry_run_delete_answers_as_a_real_one_and_keeps_the_object(api, ns):
    (await api.post(f"/api/v1/namespaces/{ns}/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "dry"},
        "spec": {"ports": [{"port": 80}]}})).expect(201)
    gone = (await api.delete(f"/api/v1/namespaces/{ns}/services/dry", params={"dryRun": "All"})).expect(200)
    assert gone["kind"] == "Service"
    (await api.get(f"/api/v1/namespaces/{ns}/services/dry")).expect(200)
    cm = await api.configmap(ns)
    st = (await api.delete(f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}",
                           params={"dryRun": "All"})).expect(200)
    assert st["kind"] == "Status" and st["details"]["kind"] == "configmaps"
    (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}")).expect(200)


async def test_pending_delete_answers_the_terminating_object(api, ns):
    base = f"/api/v1/namespaces/{ns}/configmaps"
    (await api.post(base, {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).expect(201)
    got = (await api.delete(f"{base}/held")).expect(200)
    assert got["kind"] == "ConfigMap" and got["metadata"]["deletionTimestamp"]
    # orphanDependents=false on a delete that stays pending: 202 Accepted (upstream's one 202 case)
    (await api.post(base, {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "held2", "finalizers": ["example.com/hold"]}})).expect(201)
    got = (await api.delete(f"{base}/held2", {"kind": "DeleteOptions", "apiVersion": "v1",
                                              "orphanDependents": False})).expect(202)
    assert got["metadata"]["deletionTimestamp"]
    for name in ("held", "held2"):
        (await api.patch(f"{base}/{name}", {"metadata": {"finalizers": None}})).expect(200)
        (await api.get(f"{base}/{name}")).status_obj(404, "NotFound")


async def test_delete_collection_answers_the_listed_objects(api, ns):
    base = f"/api/v1/namespaces/{ns}/configmaps"
    plain = await api.configmap(ns, "plain", labels={"batch": "x"})
    held = (await api.post(base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "held", "labels": {"batch": "x"}, "finalizers": ["example.com/hold"]}})).expect(201)
    await api.configmap(ns, "other", labels={"batch": "y"})
    lst = (await api.delete(base, params={"labelSelector": "batch=x"})).expect(200)
    assert lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1"
    by_name = {i["metadata"]["name"]: i for i in lst["items"]}
    assert set(by_name) == {"plain", "held"}
    # as they were listed: same resourceVersion, not yet terminating
    assert by_name["plain"]["metadata"]["resourceVersion"] == plain["metadata"]["resourceVersion"]
    assert by_name["held"]["metadata"]["resourceVersion"] == held["metadata"]["resourceVersion"]
    assert "deletionTimestamp" not in by_name["held"]["metadata"]
    (await api.get(f"{base}/plain")).status_obj(404, "NotFound")
    assert (await api.get(f"{base}/held")).expect(200)["metadata"]["deletionTimestamp"]
    (await api.get(f"{base}/other")).expect(200)
    (await api.patch(f"{base}/held", {"metadata": {"finalizers": None}})).expect(200)


async def test_writes_racing_a_delete_never_make_it_fail(api, ns):
    # upstream's store re-reads and deletes again when the object changed under the delete;
    # only preconditions the client gave can fail it with 409
    base = f"/api/v1/namespaces/{ns}/configmaps"
    for i in range(20):
        name = f"race-{i}"
        await api.configmap(ns, name)
        patches = [api.patch(f"{base}/{name}", {"data": {"n": str(j)}}) for j in range(6)]
        results = await asyncio.gather(*patches[:3], api.delete(f"{base}/{name}"), *patches[3:])
        deleted = results[3]
        assert deleted.status == 200, deleted.body
        assert all(p.status in (200, 404) for p in results[:3] + results[4:])
        (await api.get(f"{base}/{name}")).status_obj(404, "NotFound")


async def test_orphan_dependents_and_propagation_policy_exclude_each_other(api, ns):
    """Upstream ValidateDeleteOptions: both set (in the body or the query) is 422, and nothing is deleted."""
    cm = await api.configmap(ns)
    path = f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}"
    for body, query in (({"orphanDependents": True, "propagationPolicy": "Background"}, ""),
                        ({"propagationPolicy": "Foreground"}, "?orphanDependents=false"),
                        (None, "?orphanDependents=true&propagationPolicy=Orphan")):
        st = (await api.delete(path + query, body)).status_obj(422, "Invalid")
        assert st["details"]["causes"][0]["field"] == "propagationPolicy"
        assert st["details"]["causes"][0]["message"].endswith(
            ": orphanDependents and deletionPropagation cannot be both set"), st
    (await api.get(path)).expect(200)
    # either alone is fine
    (await api.delete(path + "?orphanDependents=true")).expect(200)
