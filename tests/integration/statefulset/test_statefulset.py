"""StatefulSets against a real `kyb server` (its controllers run in it).

There is no kubelet: `fake_kubelet_make_ready` plays it, marking pods Running and Ready
through pods/status.  Waits are watch-driven (no sleeps)."""

from __future__ import annotations

from typing import Any, Callable


from fixtures.waits import wait_until as _wait_until  # noqa: E402

Obj = dict[str, Any]
_WATCHED = (("apps", "v1", "statefulsets"), ("", "v1", "pods"), ("apps", "v1", "controllerrevisions"),
            ("", "v1", "persistentvolumeclaims"))


async def wait_until(client, ns: str, fn: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Check `fn` now and after every change to the namespace's statefulsets, pods,
    revisions or claims, until it returns something truthy."""
    return await _wait_until(client, [(gvr, ns) for gvr in _WATCHED], fn, timeout, what)


async def fake_kubelet_make_ready(client, pods: list[Obj]) -> None:
    """Plays the kubelet for the test: marks pods Running and Ready via pods/status."""
    api = client.resource("", "v1", "pods")
    now = "2020-01-01T00:00:00Z"
    for p in pods:
        st = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}
        await api.patch(p["metadata"]["name"], {"status": st}, namespace=p["metadata"]["namespace"],
                        subresource="status")


def statefulset(name: str, replicas: int = 3, image: str = "busybox:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


class Api:
    def __init__(self, client, ns: str) -> None:
        self.client, self.ns = client, ns
        self.sts = client.resource("apps", "v1", "statefulsets")
        self.pods = client.resource("", "v1", "pods")
        self.revs = client.resource("apps", "v1", "controllerrevisions")
        self.pvcs = client.resource("", "v1", "persistentvolumeclaims")

    async def pod_map(self) -> dict[str, Obj]:
        return {p["metadata"]["name"]: p for p in (await self.pods.list(self.ns))["items"]
                if not p["metadata"].get("deletionTimestamp")}

    async def wait(self, fn, what: str, timeout: float = 30.0):
        return await wait_until(self.client, self.ns, fn, timeout, what)

    async def ready_all(self, name: str, n: int, image: str | None = None) -> None:
        """Play the kubelet until `n` pods of `name` exist and are Ready (creation is
        ordered, so each pod appears only after the previous one is Ready)."""
        async def step():
            pods = await self.pod_map()
            mine = [p for p in pods.values() if p["metadata"]["name"].startswith(name + "-")]
            todo = [p for p in mine if (p.get("status") or {}).get("phase") != "Running"]
            if todo:
                await fake_kubelet_make_ready(self.client, todo)
                return None
            ok = len(mine) == n and all(image is None or p["spec"]["containers"][0]["image"] == image for p in mine)
            return mine if ok else None
        await self.wait(step, f"{n} ready pods of {name}")

    async def status(self, name: str, **want: Any):
        async def check():
            s = await self.sts.get(name, self.ns)
            st = s.get("status") or {}
            if st.get("observedGeneration") != s["metadata"]["generation"]:
                return None
            return s if all(st.get(k) == v for k, v in want.items()) else None
        return await self.wait(check, f"status {want}")


async def test_ordered_creation_identity_and_claims(client, namespace):
    api = Api(client, namespace)
    sts = statefulset("web", 3, volumeClaimTemplates=[{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"})
    sts = await api.sts.create(sts, namespace)

    # OrderedReady: only web-0 until it is Running and Ready
    async def first():
        pods = await api.pod_map()
        return pods if "web-0" in pods else None
    pods = await api.wait(first, "web-0")
    assert set(pods) == {"web-0"}
    p0 = pods["web-0"]
    labels = p0["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["controller-revision-hash"].startswith("web-")
    assert p0["spec"]["hostname"] == "web-0" and p0["spec"]["subdomain"] == "web"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}} in p0["spec"]["volumes"]
    # the controller sets the claim's owner references just after creating the pod
    async def owned_claim():
        c = await api.pvcs.get("data-web-0", namespace)
        return c if c["metadata"].get("ownerReferences") else None
    pvc = await api.wait(owned_claim, "data-web-0 owned")
    assert pvc["metadata"]["labels"] == {"app": "web"}
    # whenDeleted=Delete: the claim is owned (not controlled) by the set
    assert pvc["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                                   "uid": sts["metadata"]["uid"]}]
    # nothing more happens while web-0 is not ready: the pod list stays {web-0}
    # (checked again below once web-1 appears only after web-0 became ready)
    await fake_kubelet_make_ready(client, [p0])

    async def second():
        pods = await api.pod_map()
        return pods if "web-1" in pods else None
    pods = await api.wait(second, "web-1")
    assert "web-2" not in pods
    await api.ready_all("web", 3)
    s = await api.status("web", replicas=3, readyReplicas=3, availableReplicas=3, currentReplicas=3,
                         updatedReplicas=3)
    st = s["status"]
    assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
    assert st.get("collisionCount", 0) == 0
    assert {p["metadata"]["name"] for p in (await api.pvcs.list(namespace))["items"]} == \
        {"data-web-0", "data-web-1", "data-web-2"}
    rev = await api.revs.get(st["currentRevision"], namespace)
    assert rev["revision"] == 1
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]

    # scale down: highest ordinal first, one at a time; claims are retained
    await api.sts.patch("web", {"spec": {"replicas": 1}}, namespace=namespace)

    async def scaled():
        pods = await api.pod_map()
        return pods if set(pods) == {"web-0"} else None
    await api.wait(scaled, "scale down to web-0")
    assert len((await api.pvcs.list(namespace))["items"]) == 3


async def test_partitioned_rolling_update_then_full(kyb, client, namespace):
    api = Api(client, namespace)
    await api.sts.create(statefulset("db", 4, updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"partition": 2}}), namespace)
    await api.ready_all("db", 4)
    s = await api.status("db", readyReplicas=4, currentReplicas=4)
    rev1 = s["status"]["currentRevision"]

    await api.sts.patch("db", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}},
                        namespace=namespace)

    async def canary():
        pods = await api.pod_map()
        todo = [p for p in pods.values() if (p.get("status") or {}).get("phase") != "Running"]
        if todo:
            await fake_kubelet_make_ready(client, todo)
            return None
        imgs = {n: p["spec"]["containers"][0]["image"] for n, p in pods.items()}
        return imgs if imgs == {"db-0": "busybox:1", "db-1": "busybox:1", "db-2": "busybox:2",
                                "db-3": "busybox:2"} else None
    await api.wait(canary, "ordinals 3 and 2 updated")
    s = await api.status("db", readyReplicas=4, updatedReplicas=2, currentReplicas=2)
    rev2 = s["status"]["updateRevision"]
    assert s["status"]["currentRevision"] == rev1 != rev2
    out = kyb.kubectl("-n", namespace, "rollout", "status", "statefulset/db", "--timeout=10s").stdout
    assert "partitioned roll out complete: 2 new pods have been updated" in out

    # a deleted pod below the partition comes back at the current revision
    old0 = (await api.pod_map())["db-0"]
    await api.pods.delete("db-0", namespace)

    async def back():
        p = (await api.pod_map()).get("db-0")
        return p if p and p["metadata"]["uid"] != old0["metadata"]["uid"] else None
    p0 = await api.wait(back, "db-0 recreated")
    assert p0["spec"]["containers"][0]["image"] == "busybox:1"
    assert p0["metadata"]["labels"]["controller-revision-hash"] == rev1
    await fake_kubelet_make_ready(client, [p0])

    # lowering the partition continues the roll-out
    await api.sts.patch("db", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}, namespace=namespace)
    await api.ready_all("db", 4, image="busybox:2")
    s = await api.status("db", readyReplicas=4, updatedReplicas=4, currentReplicas=4)
    assert s["status"]["currentRevision"] == s["status"]["updateRevision"] == rev2
    out = kyb.kubectl("-n", namespace, "rollout", "status", "statefulset/db", "--timeout=10s").stdout
    assert "partitioned roll out complete: 4 new pods have been updated" in out


async def test_ondelete_updates_only_deleted_pods(client, namespace):
    api = Api(client, namespace)
    await api.sts.create(statefulset("od", 3, updateStrategy={"type": "OnDelete"}), namespace)
    await api.ready_all("od", 3)
    await api.status("od", readyReplicas=3)
    await api.sts.patch("od", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}},
                        namespace=namespace)
    s = await api.status("od", updatedReplicas=0, currentReplicas=3)
    assert s["status"]["updateRevision"] != s["status"]["currentRevision"]
    await api.pods.delete("od-1", namespace)

    async def replaced():
        pods = await api.pod_map()
        p = pods.get("od-1")
        return pods if p and p["spec"]["containers"][0]["image"] == "busybox:2" else None
    pods = await api.wait(replaced, "od-1 at the new revision")
    assert pods["od-0"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert pods["od-2"]["spec"]["containers"][0]["image"] == "busybox:1"
    await fake_kubelet_make_ready(client, [pods["od-1"]])
    await api.status("od", updatedReplicas=1, currentReplicas=2, readyReplicas=3)


async def test_rollout_history_and_undo(kyb, client, namespace):
    api = Api(client, namespace)
    await api.sts.create(statefulset("hist", 2), namespace)
    await api.ready_all("hist", 2)
    await api.status("hist", readyReplicas=2, currentReplicas=2)
    kyb.kubectl("-n", namespace, "set", "image", "statefulset/hist", "c=busybox:2")
    await api.ready_all("hist", 2, image="busybox:2")
    s = await api.status("hist", updatedReplicas=2, currentReplicas=2, readyReplicas=2)
    rev2 = s["status"]["updateRevision"]
    out = kyb.kubectl("-n", namespace, "rollout", "status", "statefulset/hist", "--timeout=10s").stdout
    assert "complete" in out

    out = kyb.kubectl("-n", namespace, "rollout", "history", "statefulset/hist").stdout
    lines = [ln.split() for ln in out.splitlines()[1:] if ln.strip()]
    assert [ln[0] for ln in lines[1:]] == ["1", "2"], out
    out = kyb.kubectl("-n", namespace, "rollout", "history", "statefulset/hist", "--revision=1").stdout
    assert "busybox:1" in out

    kyb.kubectl("-n", namespace, "rollout", "undo", "statefulset/hist")
    sts = await api.sts.get("hist", namespace)
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    await api.ready_all("hist", 2, image="busybox:1")
    s = await api.status("hist", updatedReplicas=2, currentReplicas=2, readyReplicas=2)
    # the old revision is renumbered 3; no new object
    revs = {r["metadata"]["name"]: r["revision"] for r in (await api.revs.list(namespace))["items"]}
    assert len(revs) == 2 and revs[s["status"]["updateRevision"]] == 3 and revs[rev2] == 2
    out = kyb.kubectl("-n", namespace, "rollout", "history", "statefulset/hist").stdout
    assert [ln.split()[0] for ln in out.splitlines()[2:] if ln.strip()] == ["2", "3"], out


async def test_parallel_creates_all_at_once_and_ordinals_start(client, namespace):
    api = Api(client, namespace)
    await api.sts.create(statefulset("par", 3, podManagementPolicy="Parallel", ordinals={"start": 5}), namespace)

    async def all_three():
        pods = await api.pod_map()
        return pods if set(pods) == {"par-5", "par-6", "par-7"} else None
    pods = await api.wait(all_three, "3 pods without readiness")  # nobody played the kubelet
    assert all((p.get("status") or {}).get("phase") == "Pending" for p in pods.values())
    assert pods["par-7"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "7"
