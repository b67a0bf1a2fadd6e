"""The DaemonSet controller inside a real `kyb server`, on simulated nodes.

The nodes are Node objects registered by the test (kybernetes.scheduler.simnodes — a
simulator, no containers run), the server's scheduler binds the daemon pods, and
`FakeKubelet` below plays the kubelet: it marks bound pods Running+Ready through
pods/status and finishes graceful deletions.  Every wait is driven by watch events."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, Callable

import pytest

from kybernetes.client import Client, NotFound
from kybernetes.scheduler.simnodes import SimNodes

from fixtures.waits import wait_until as _wait_until  # noqa: E402

Obj = dict[str, Any]


class FakeKubelet:
    """A fake kubelet for tests: pods bound to a node become Running and Ready; pods
    being deleted are removed at once (grace period 0)."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.pods = client.resource("", "v1", "pods")
        self.ns = namespace
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        lst = await self.pods.list(self.ns)
        for p in lst["items"]:
            await self._handle(p)
        self._task = asyncio.ensure_future(self._run(lst["metadata"]["resourceVersion"]))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, rv: str) -> None:
        while True:
            async with self.pods.watch(self.ns, resource_version=rv, timeout_seconds=60) as w:
                async for etype, pod in w:
                    rv = pod.get("metadata", {}).get("resourceVersion") or rv
                    if etype in ("ADDED", "MODIFIED"):
                        await self._handle(pod)

    async def _handle(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            if meta.get("deletionTimestamp"):
                await self.pods.delete(meta["name"], self.ns, grace_period_seconds=0)
                return
            if not pod["spec"].get("nodeName"):
                return
            st = pod.get("status") or {}
            if st.get("phase") == "Running" and any(c.get("type") == "Ready" and c.get("status") == "True"
                                                    for c in st.get("conditions") or []):
                return
            now = "2024-01-01T00:00:00Z"
            pod["status"] = {**st, "phase": "Running", "podIP": "10.244.0.10",
                             "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                                            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                             "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "",
                                                    "ready": True, "restartCount": 0, "started": True,
                                                    "state": {"running": {"startedAt": now}}}
                                                   for c in pod["spec"]["containers"]]}
            await self.pods.update_status(pod)
        except (NotFound, Exception):  # noqa: BLE001 - changed or gone: the next event retries
            pass


async def wait_until(client: Client, ns: str, fn: Callable[[], Any], timeout: float = 30.0,
                     what: str = "condition") -> Any:
    """Check `fn` now and after every change to daemonsets, pods, controllerrevisions
    or nodes, until it returns something truthy."""
    watched = ((("apps", "v1", "daemonsets"), ns), (("", "v1", "pods"), ns),
               (("apps", "v1", "controllerrevisions"), ns), (("", "v1", "nodes"), None))
    return await _wait_until(client, watched, fn, timeout, what)


def daemonset(name: str, pool: str, image: str = "busybox:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {"dspool": pool},
                                           "containers": [{"name": "c", "image": image}]}}, **spec}}


@pytest.fixture
async def env(client, namespace):
    """(client, namespace, pool label, node factory); simulated nodes are deleted after."""
    pool = secrets.token_hex(3)
    sims: list[SimNodes] = []
    kubelet = FakeKubelet(client, namespace)
    await kubelet.start()

    async def add_nodes(count: int, prefix: str) -> SimNodes:
        sim = SimNodes(client, count, prefix=f"{pool}-{prefix}", labels={"dspool": pool})
        await sim.start()
        sims.append(sim)
        return sim

    yield client, namespace, pool, add_nodes
    await kubelet.stop()
    for sim in sims:
        await sim.stop(delete=True)


async def _pods_by_node(client: Client, ns: str, name: str) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for p in (await client.resource("", "v1", "pods").list(ns, label_selector=f"app={name}"))["items"]:
        if p["metadata"].get("deletionTimestamp"):
            continue
        out.setdefault(p["spec"].get("nodeName") or "", []).append(p)
    return out


def _ready(p: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (p.get("status") or {}).get("conditions") or [])


async def test_one_pod_per_node_taints_and_new_node(env):
    client, ns, pool, add_nodes = env
    sim = await add_nodes(3, "a")
    nodes = client.resource("", "v1", "nodes")
    tainted = sim.names[2]
    await nodes.patch(tainted, {"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})
    dss = client.resource("apps", "v1", "daemonsets")
    await dss.create(daemonset("agent", pool), ns)

    async def placed():
        by_node = await _pods_by_node(client, ns, "agent")
        ds = await dss.get("agent", ns)
        st = ds.get("status") or {}
        ok = (set(by_node) == set(sim.names[:2]) and all(len(v) == 1 and _ready(v[0]) for v in by_node.values())
              and st.get("desiredNumberScheduled") == 2 and st.get("numberReady") == 2
              and st.get("numberAvailable") == 2 and st.get("observedGeneration") == ds["metadata"]["generation"])
        return (by_node, ds) if ok else None

    by_node, ds = await wait_until(client, ns, placed, what="a pod on each untainted node")
    pod = next(iter(by_node.values()))[0]
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}]}]
    tol_keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tol_keys
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tol_keys
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    st = ds["status"]
    assert (st["currentNumberScheduled"], st["numberMisscheduled"], st["updatedNumberScheduled"]) == (2, 0, 2)
    assert st.get("numberUnavailable", 0) == 0

    # tolerating the taint puts a pod on the tainted node too
    await dss.patch("agent", {"spec": {"template": {"spec": {"tolerations": [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}}}}, namespace=ns)

    async def all_three():
        by_node = await _pods_by_node(client, ns, "agent")
        return by_node if set(by_node) == set(sim.names) and all(len(v) == 1 for v in by_node.values()) else None

    await wait_until(client, ns, all_three, what="a pod on the tolerated node")

    # a node added later gets its pod
    later = await add_nodes(1, "late")

    async def on_new_node():
        by_node = await _pods_by_node(client, ns, "agent")
        ds = await dss.get("agent", ns)
        return by_node if later.names[0] in by_node and (ds.get("status") or {}).get("desiredNumberScheduled") == 4 else None

    await wait_until(client, ns, on_new_node, what="a pod on the node added later")


async def test_rolling_update_respects_max_unavailable_history_and_undo(env, kyb):
    client, ns, pool, add_nodes = env
    sim = await add_nodes(4, "r")
    dss = client.resource("apps", "v1", "daemonsets")
    await dss.create(daemonset("roll", pool, updateStrategy={"type": "RollingUpdate",
                                                              "rollingUpdate": {"maxUnavailable": 1}}), ns)

    async def converged(image: str):
        async def check():
            by_node = await _pods_by_node(client, ns, "roll")
            ds = await dss.get("roll", ns)
            st = ds.get("status") or {}
            ok = (set(by_node) == set(sim.names)
                  and all(len(v) == 1 and _ready(v[0]) and v[0]["spec"]["containers"][0]["image"] == image
                          for v in by_node.values())
                  and st.get("updatedNumberScheduled") == 4 and st.get("numberAvailable") == 4
                  and st.get("observedGeneration") == ds["metadata"]["generation"])
            return ds if ok else None
        return check

    await wait_until(client, ns, await converged("busybox:1"), what="initial roll-out")

    # watch every pod change during the update: never more than 1 node without a ready pod
    pods = client.resource("", "v1", "pods")
    worst = {"unavailable": 0}
    state: dict[str, Obj] = {}
    lst = await pods.list(ns, label_selector="app=roll")
    for p in lst["items"]:
        state[p["metadata"]["name"]] = p

    def unavailable_nodes() -> int:
        ready_nodes = {p["spec"].get("nodeName") for p in state.values()
                       if _ready(p) and not p["metadata"].get("deletionTimestamp")}
        return sum(1 for n in sim.names if n not in ready_nodes)

    async def observe(rv: str) -> None:
        while True:
            async with pods.watch(ns, resource_version=rv, label_selector="app=roll", timeout_seconds=60) as w:
                async for etype, p in w:
                    rv = p["metadata"].get("resourceVersion") or rv
                    if etype == "DELETED":
                        state.pop(p["metadata"]["name"], None)
                    else:
                        state[p["metadata"]["name"]] = p
                    worst["unavailable"] = max(worst["unavailable"], unavailable_nodes())

    watcher = asyncio.ensure_future(observe(lst["metadata"]["resourceVersion"]))
    try:
        kyb.kubectl("-n", ns, "set", "image", "daemonset/roll", "c=busybox:2")
        await wait_until(client, ns, await converged("busybox:2"), what="rolling update to busybox:2")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert worst["unavailable"] <= 1, worst

    # history: two revisions, owned by the DaemonSet, labelled with the hash
    revs = (await client.resource("apps", "v1", "controllerrevisions").list(ns))["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]
    ds = await dss.get("roll", ns)
    cur = next(r for r in revs if r["revision"] == 2)
    assert cur["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
    pod_hashes = {p["metadata"]["labels"]["controller-revision-hash"] for p in state.values()
                  if not p["metadata"].get("deletionTimestamp")}
    assert pod_hashes == {cur["metadata"]["labels"]["controller-revision-hash"]}

    out = kyb.kubectl("-n", ns, "rollout", "history", "daemonset/roll").stdout
    lines = [ln.split() for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert [ln[0] for ln in lines] == ["1", "2"], out
    out = kyb.kubectl("-n", ns, "rollout", "history", "daemonset/roll", "--revision=1").stdout
    assert "busybox:1" in out, out

    # undo to revision 1: the old template comes back everywhere, as revision 3
    out = kyb.kubectl("-n", ns, "rollout", "undo", "daemonset/roll", "--to-revision=1").stdout
    assert "rolled back" in out, out
    ds = await wait_until(client, ns, await converged("busybox:1"), what="undo to revision 1")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"

    async def renumbered():
        revs = (await client.resource("apps", "v1", "controllerrevisions").list(ns))["items"]
        return revs if sorted(r["revision"] for r in revs) == [2, 3] else None

    revs = await wait_until(client, ns, renumbered, what="revision 1 renumbered to 3")
    out = kyb.kubectl("-n", ns, "rollout", "history", "daemonset/roll").stdout
    assert [ln.split()[0] for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()] == ["2", "3"], out
    ds_json = json.loads(kyb.kubectl("-n", ns, "get", "ds", "roll", "-o", "json").stdout)
    assert ds_json["status"]["numberMisscheduled"] == 0


async def test_on_delete_and_history_limit(env):
    client, ns, pool, add_nodes = env
    sim = await add_nodes(2, "o")
    dss = client.resource("apps", "v1", "daemonsets")
    pods = client.resource("", "v1", "pods")
    revs_api = client.resource("apps", "v1", "controllerrevisions")
    await dss.create(daemonset("od", pool, updateStrategy={"type": "OnDelete"}, revisionHistoryLimit=1), ns)

    async def images():
        by_node = await _pods_by_node(client, ns, "od")
        if set(by_node) != set(sim.names) or any(len(v) != 1 for v in by_node.values()):
            return None
        return {n: v[0]["spec"]["containers"][0]["image"] for n, v in by_node.items()}

    async def all_image(image):
        async def check():
            got = await images()
            return got if got and set(got.values()) == {image} else None
        return check

    await wait_until(client, ns, await all_image("busybox:1"), what="OnDelete initial pods")
    for image in ("busybox:2", "busybox:3"):
        await dss.patch("od", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
                        namespace=ns)

        async def observed():
            ds = await dss.get("od", ns)
            return ds if (ds.get("status") or {}).get("observedGeneration") == ds["metadata"]["generation"] else None

        await wait_until(client, ns, observed, what="generation observed")
    # OnDelete: nothing replaced yet; the revisions used by live pods are kept
    assert set((await images()).values()) == {"busybox:1"}
    # delete one pod: it comes back at the newest template
    victim = (await _pods_by_node(client, ns, "od"))[sim.names[0]][0]
    await pods.delete(victim["metadata"]["name"], ns)

    async def replaced():
        got = await images()
        return got if got and got[sim.names[0]] == "busybox:3" and got[sim.names[1]] == "busybox:1" else None

    await wait_until(client, ns, replaced, what="deleted pod recreated from the new template")

    # limit 1: busybox:2's revision (unused by pods) goes; busybox:1's is kept while a pod uses it
    async def pruned():
        revs = (await revs_api.list(ns))["items"]
        return revs if sorted(r["revision"] for r in revs) == [1, 3] else None

    await wait_until(client, ns, pruned, what="history pruned to the limit")


async def test_rolling_update_with_max_surge_keeps_every_node_ready(env):
    client, ns, pool, add_nodes = env
    sim = await add_nodes(3, "s")
    dss = client.resource("apps", "v1", "daemonsets")
    pods = client.resource("", "v1", "pods")
    await dss.create(daemonset("surge", pool, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 0, "maxSurge": 1}}), ns)

    def converged(image: str):
        async def check():
            by_node = await _pods_by_node(client, ns, "surge")
            ds = await dss.get("surge", ns)
            st = ds.get("status") or {}
            ok = (set(by_node) == set(sim.names)
                  and all(len(v) == 1 and _ready(v[0]) and v[0]["spec"]["containers"][0]["image"] == image
                          for v in by_node.values())
                  and st.get("updatedNumberScheduled") == 3 and st.get("numberAvailable") == 3)
            return ds if ok else None
        return check

    await wait_until(client, ns, converged("busybox:1"), what="initial roll-out")
    lst = await pods.list(ns, label_selector="app=surge")
    state = {p["metadata"]["name"]: p for p in lst["items"]}
    seen = {"min_ready_nodes": 3, "max_pods": 3}

    async def observe(rv: str) -> None:
        while True:
            async with pods.watch(ns, resource_version=rv, label_selector="app=surge", timeout_seconds=60) as w:
                async for etype, p in w:
                    rv = p["metadata"].get("resourceVersion") or rv
                    if etype == "DELETED":
                        state.pop(p["metadata"]["name"], None)
                    else:
                        state[p["metadata"]["name"]] = p
                    live = [q for q in state.values() if not q["metadata"].get("deletionTimestamp")]
                    ready_nodes = {q["spec"].get("nodeName") for q in live if _ready(q)}
                    seen["min_ready_nodes"] = min(seen["min_ready_nodes"], len(ready_nodes & set(sim.names)))
                    seen["max_pods"] = max(seen["max_pods"], len(live))

    watcher = asyncio.ensure_future(observe(lst["metadata"]["resourceVersion"]))
    try:
        await dss.patch("surge", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}},
                        namespace=ns)
        await wait_until(client, ns, converged("busybox:2"), what="surge roll-out to busybox:2")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert seen["min_ready_nodes"] == 3, seen  # maxUnavailable 0: every node always had a ready pod
    assert seen["max_pods"] <= 4, seen  # maxSurge 1: at most one extra pod at a time
