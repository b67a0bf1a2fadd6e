"""Deployments and ReplicaSets against a real `kyb server` (its controllers run in it).

There is no scheduler or kubelet: pods stay Pending unless a test plays the kubelet
(`fake_kubelet_make_ready`, which writes Ready through pods/status)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controllers"))
from ctl_helpers import condition  # noqa: E402

from fixtures.waits import wait_until as _wait_until  # noqa: E402

Obj = dict[str, Any]


_WATCHED = (("apps", "v1", "deployments"), ("apps", "v1", "replicasets"), ("", "v1", "pods"))
_CLIENT: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _remember(client, namespace):
    _CLIENT["client"], _CLIENT["ns"] = client, namespace
    yield


async def wait_until(fn: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Check `fn` now and after every watch event on the namespace's deployments, replicasets and pods."""
    client, ns = _CLIENT["client"], _CLIENT["ns"]
    return await _wait_until(client, [(gvr, ns) for gvr in _WATCHED], fn, timeout, what)


def deployment(name: str, replicas: int = 3, image: str = "busybox:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


def owned_by(objs: list[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [o for o in objs if any(r.get("uid") == uid and r.get("controller")
                                   for r in o["metadata"].get("ownerReferences") or [])]


async def fake_kubelet_make_ready(client, pods: list[Obj]) -> None:
    """Plays the kubelet for the test: marks pods Running and Ready via pods/status."""
    api = client.resource("", "v1", "pods")
    for p in pods:
        now = "2020-01-01T00:00:00Z"
        st = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now}]}
        await api.patch(p["metadata"]["name"], {"status": st}, namespace=p["metadata"]["namespace"],
                        subresource="status")


class Api:
    def __init__(self, client, ns: str) -> None:
        self.ns = ns
        self.d = client.resource("apps", "v1", "deployments")
        self.rs = client.resource("apps", "v1", "replicasets")
        self.pods = client.resource("", "v1", "pods")

    async def rss(self, d: Obj) -> list[Obj]:
        return owned_by((await self.rs.list(self.ns))["items"], d)

    async def pods_of(self, rs: Obj, active_only: bool = True) -> list[Obj]:
        pods = owned_by((await self.pods.list(self.ns))["items"], rs)
        return [p for p in pods if not (active_only and p["metadata"].get("deletionTimestamp"))]


async def test_replicaset_creates_releases_adopts_and_scales(client, namespace):
    api = Api(client, namespace)
    rs = await api.rs.create({"metadata": {"name": "rs1"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "rs1"}},
        "template": {"metadata": {"labels": {"app": "rs1"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}},
        namespace)

    async def three():
        pods = await api.pods_of(rs)
        return pods if len(pods) == 3 else None
    pods = await wait_until(three, what="3 pods")
    for p in pods:
        assert p["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
        assert p["metadata"]["name"].startswith("rs1-") and len(p["metadata"]["name"]) == len("rs1-") + 5

    async def status():
        r = await api.rs.get("rs1", namespace)
        s = r.get("status") or {}
        return r if s.get("replicas") == 3 and s.get("fullyLabeledReplicas") == 3 and \
            s.get("observedGeneration") == r["metadata"]["generation"] else None
    await wait_until(status, what="rs status")

    # a pod that stops matching is released and replaced
    keep = pods[0]["metadata"]["name"]
    await fake_kubelet_make_ready(client, pods[:1])
    await api.pods.patch(keep, {"metadata": {"labels": {"app": "other"}}}, namespace=namespace)

    async def released():
        p = await api.pods.get(keep, namespace)
        return not p["metadata"].get("ownerReferences") and len(await api.pods_of(rs)) == 3
    await wait_until(released, what="release and replace")

    # matching again, it is adopted; of the 4, an unready pending one is deleted
    await api.pods.patch(keep, {"metadata": {"labels": {"app": "rs1"}}}, namespace=namespace)

    async def adopted():
        owned = await api.pods_of(rs)
        return owned if len(owned) == 3 and keep in {p["metadata"]["name"] for p in owned} else None
    await wait_until(adopted, what="adoption")

    # scale down: the ready pod stays
    await api.rs.patch("rs1", {"spec": {"replicas": 1}}, namespace=namespace)

    async def one():
        left = await api.pods_of(rs)
        return left if len(left) == 1 else None
    left = await wait_until(one, what="scale down to 1")
    assert left[0]["metadata"]["name"] == keep

    async def ready_status():
        s = (await api.rs.get("rs1", namespace)).get("status") or {}
        return s.get("readyReplicas") == 1 and s.get("availableReplicas") == 1 and s.get("replicas") == 1
    await wait_until(ready_status, what="ready status")


async def test_deployment_rollout_history_undo(kyb, client, namespace):
    api = Api(client, namespace)
    d = await api.d.create(deployment("web", 4), namespace)

    async def first():
        rss = await api.rss(d)
        if len(rss) != 1:
            return None
        pods = await api.pods_of(rss[0])
        return rss[0] if len(pods) == 4 else None
    rs1 = await wait_until(first, what="first rs with 4 pods")
    h = rs1["metadata"]["labels"]["pod-template-hash"]
    assert rs1["metadata"]["name"] == f"web-{h}"
    assert rs1["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    assert rs1["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs1["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "4"
    assert rs1["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "5"

    # scale
    kyb.kubectl("-n", namespace, "scale", "deployment/web", "--replicas=2")

    async def two():
        rs = await api.rs.get(rs1["metadata"]["name"], namespace)
        return rs["spec"]["replicas"] == 2 and len(await api.pods_of(rs)) == 2
    await wait_until(two, what="scale to 2")

    # make them ready (fake kubelet), so the rollout can proceed, then set image
    await fake_kubelet_make_ready(client, await api.pods_of(rs1))

    async def available():
        dd = await api.d.get("web", namespace)
        c = condition(dd, "Available")
        return dd if (dd.get("status") or {}).get("availableReplicas") == 2 and c and c["status"] == "True" else None
    await wait_until(available, what="available")

    kyb.kubectl("-n", namespace, "set", "image", "deployment/web", "c=busybox:2")

    # maxSurge 25% of 2 -> 1, maxUnavailable 25% of 2 -> 0: one new pod, old stays at 2
    async def surged():
        rss = await api.rss(d)
        if len(rss) != 2:
            return None
        new = next(r for r in rss if r["metadata"]["name"] != rs1["metadata"]["name"])
        old = next(r for r in rss if r["metadata"]["name"] == rs1["metadata"]["name"])
        dd = await api.d.get("web", namespace)
        st = dd.get("status") or {}
        if new["spec"]["replicas"] == 1 and old["spec"]["replicas"] == 2 and st.get("updatedReplicas") == 1 \
                and st.get("replicas") == 3:
            return new, dd
        return None
    new, dd = await wait_until(surged, what="surge")
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert dd["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert condition(dd, "Progressing")["reason"] in ("ReplicaSetUpdated", "NewReplicaSetCreated")
    assert (dd.get("status") or {}).get("unavailableReplicas") == 1

    out = kyb.kubectl("-n", namespace, "rollout", "history", "deployment/web").stdout
    assert "1" in out and "2" in out, out

    kyb.kubectl("-n", namespace, "rollout", "undo", "deployment/web", "--to-revision=1")

    async def undone():
        dd = await api.d.get("web", namespace)
        if dd["spec"]["template"]["spec"]["containers"][0]["image"] != "busybox:1":
            return None
        rs = await api.rs.get(rs1["metadata"]["name"], namespace)
        ann = rs["metadata"]["annotations"]
        return rs if ann.get("deployment.kubernetes.io/revision") == "3" else None
    rs = await wait_until(undone, what="undo")
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"

    # with the old RS back as the new one, the rollout finishes: the surge RS scales to 0
    async def complete():
        dd = await api.d.get("web", namespace)
        c = condition(dd, "Progressing")
        newrs = await api.rs.get(new["metadata"]["name"], namespace)
        return newrs["spec"]["replicas"] == 0 and c and c["reason"] == "NewReplicaSetAvailable"
    await wait_until(complete, what="rollout complete after undo")


async def test_deleted_replicaset_is_recreated(client, namespace):
    api = Api(client, namespace)
    d = await api.d.create(deployment("again", 2), namespace)

    async def one_rs():
        rss = await api.rss(d)
        return rss[0] if len(rss) == 1 else None
    rs = await wait_until(one_rs)
    await api.rs.delete(rs["metadata"]["name"], namespace, propagation_policy="Orphan")

    async def recreated():
        rss = await api.rss(d)
        if len(rss) != 1 or rss[0]["metadata"]["uid"] == rs["metadata"]["uid"]:
            return None
        return rss[0] if len(await api.pods_of(rss[0])) == 2 else None
    new = await wait_until(recreated, what="recreated rs with pods")
    assert new["metadata"]["name"] == rs["metadata"]["name"]


async def test_recreate_strategy(client, namespace):
    api = Api(client, namespace)
    d = await api.d.create(deployment("rec", 2, strategy={"type": "Recreate"}), namespace)

    async def first():
        rss = await api.rss(d)
        return rss[0] if len(rss) == 1 and len(await api.pods_of(rss[0])) == 2 else None
    rs1 = await wait_until(first)
    await api.d.patch("rec", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}},
                      namespace=namespace, type="strategic")

    async def scaled_down():
        old = await api.rs.get(rs1["metadata"]["name"], namespace)
        return old["spec"]["replicas"] == 0
    await wait_until(scaled_down, what="old scaled to 0")
