"""Workloads end to end on simulated nodes, driven with the real kubectl: a `kyb server`
(controllers and scheduler in it) and `kyb sim-nodes --run-pods` processes playing the
nodes (tests/fixtures/simcluster.py).

Deployment rollout, undo and pause; StatefulSet partitioned canary, full roll-out and
OnDelete; DaemonSet rolling update and `rollout undo` on every node; a Job and a CronJob
completing; a node going silent, tainted, its pod evicted and replaced elsewhere; a
PodDisruptionBudget refusing an eviction."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, Callable

import pytest
import yaml
from kubernetes import client as k8s, config as k8s_config
from kubernetes.client.exceptions import ApiException

from fixtures.server import start_server
from fixtures.simcluster import PodLifecycle, SimNodeGroup
from fixtures.waits import wait_until

Obj = dict[str, Any]
PODS = ("", "v1", "pods")
NODES = ("", "v1", "nodes")
EVENTS = ("", "v1", "events")
DEPLOYMENTS = ("apps", "v1", "deployments")
STATEFULSETS = ("apps", "v1", "statefulsets")
DAEMONSETS = ("apps", "v1", "daemonsets")
JOBS = ("batch", "v1", "jobs")
CRONJOBS = ("batch", "v1", "cronjobs")
PDBS = ("policy", "v1", "poddisruptionbudgets")
POOL_A = 3  # nodes sim-a-0000.. labelled pool=a, shared by the tests


class Cluster:
    def __init__(self, srv: Any, lifecycle: PodLifecycle, log_dir: Any) -> None:
        self.srv = srv
        self.lifecycle = lifecycle
        self.log_dir = log_dir
        self.groups: list[SimNodeGroup] = []

    def nodes(self, prefix: str, count: int, labels: str) -> SimNodeGroup:
        g = SimNodeGroup(self.srv.kubeconfig, prefix, count, labels, log_dir=self.log_dir)
        self.groups.append(g)
        self.lifecycle.live.update(g.names)
        return g

    def silence(self, group: SimNodeGroup) -> None:
        self.lifecycle.live.difference_update(group.names)
        group.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data = tmp_path_factory.mktemp("kybsim")
    srv = start_server(data, extra=("--node-monitor-grace-period", "15s"))
    lifecycle = PodLifecycle(srv.kubeconfig)
    c = Cluster(srv, lifecycle, data)
    try:
        lifecycle.start()
        c.nodes("sim-a-", POOL_A, "pool=a")
        yield c
    finally:
        for g in c.groups:
            g.stop()
        lifecycle.stop()
        srv.stop()


@pytest.fixture
async def api(cluster):
    from kybernetes.client import Client

    async with Client.from_kubeconfig(cluster.srv.kubeconfig) as c:
        yield c


@pytest.fixture
async def ns(cluster):
    name = f"w-{secrets.token_hex(3)}"
    await kubectl(cluster, "create", "namespace", name)
    yield name
    await kubectl(cluster, "delete", "namespace", name, "--wait=false", check=False)


async def kubectl(cluster: Cluster, *args: str, input: str | None = None, check: bool = True, timeout: float = 120):
    """The real kubectl, off the event loop."""
    return await asyncio.to_thread(cluster.srv.kubectl, *args, input=input, check=check, timeout=timeout)


async def apply(cluster: Cluster, ns: str, obj: Obj) -> None:
    await kubectl(cluster, "apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj))


async def get_json(cluster: Cluster, *args: str) -> Obj:
    return json.loads((await kubectl(cluster, "get", *args, "-o", "json")).stdout)


def live_pods(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def running_ready(p: Obj) -> bool:
    st = p.get("status") or {}
    return st.get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])


def image(p: Obj) -> str:
    return p["spec"]["containers"][0]["image"]


async def until(api, ns: str, watched: tuple, fn: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    return await wait_until(api, [(gvr, ns) for gvr in watched], fn, timeout, what)


async def pods_of(api, ns: str, selector: str) -> list[Obj]:
    return (await api.resource(*PODS).list(ns, label_selector=selector))["items"]


# ---------------------------------------------------------------------- Deployment
async def test_deployment_rollout_undo_pause(cluster, api, ns):
    k = lambda *a, **kw: kubectl(cluster, *a, "-n", ns, **kw)  # noqa: E731
    await k("create", "deployment", "web", "--image=busybox:1", "--replicas=3")
    await k("rollout", "status", "deployment/web", "--timeout=90s")
    pods = live_pods(await pods_of(api, ns, "app=web"))
    assert len(pods) == 3 and all(running_ready(p) and p["spec"]["nodeName"].startswith("sim-a-") for p in pods)

    await k("set", "image", "deployment/web", "busybox=busybox:2")
    out = (await k("rollout", "status", "deployment/web", "--timeout=90s")).stdout
    assert 'deployment "web" successfully rolled out' in out
    history = (await k("rollout", "history", "deployment/web")).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    assert "rolled back" in (await k("rollout", "undo", "deployment/web")).stdout
    await k("rollout", "status", "deployment/web", "--timeout=90s")
    d = await get_json(cluster, "deployment", "web", "-n", ns)
    assert image(d["spec"]["template"]) == "busybox:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"

    async def settled(want: str):
        pods = live_pods(await pods_of(api, ns, "app=web"))
        return pods if len(pods) == 3 and all(image(p) == want and running_ready(p) for p in pods) else None

    await until(api, ns, (PODS,), lambda: settled("busybox:1"), "pods back on busybox:1")

    # paused: a template change makes no new ReplicaSet until resumed
    await k("rollout", "pause", "deployment/web")
    await k("set", "image", "deployment/web", "busybox=busybox:3")
    gen = (await get_json(cluster, "deployment", "web", "-n", ns))["metadata"]["generation"]
    await k("wait", f"--for=jsonpath={{.status.observedGeneration}}={gen}", "deployment/web", "--timeout=60s")
    rss = (await get_json(cluster, "replicasets", "-n", ns, "-l", "app=web"))["items"]
    assert "busybox:3" not in {image(rs["spec"]["template"]) for rs in rss}
    assert all(image(p) == "busybox:1" for p in live_pods(await pods_of(api, ns, "app=web")))
    await k("rollout", "resume", "deployment/web")
    await k("rollout", "status", "deployment/web", "--timeout=90s")
    await until(api, ns, (PODS,), lambda: settled("busybox:3"), "pods on busybox:3 after resume")
    events = (await k("events", "--for", "deployment/web")).stdout
    assert "ScalingReplicaSet" in events and "Scaled up replica set web-" in events


# ---------------------------------------------------------------------- StatefulSet
def statefulset(name: str, partition: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": 3, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {"pool": "a"},
                                           "containers": [{"name": "db", "image": "busybox:1"}]}}}}


async def test_statefulset_canary_full_rollout_and_on_delete(cluster, api, ns):
    k = lambda *a, **kw: kubectl(cluster, *a, "-n", ns, **kw)  # noqa: E731
    await apply(cluster, ns, statefulset("db", 2))
    await k("rollout", "status", "statefulset/db", "--timeout=90s")

    async def revisions():
        sts = await api.resource(*STATEFULSETS).get("db", ns)
        pods = {p["metadata"]["name"]: p for p in live_pods(await pods_of(api, ns, "app=db"))}
        return sts, pods

    def rev(p: Obj) -> str:
        return p["metadata"]["labels"]["controller-revision-hash"]

    # canary: only the ordinal at or above the partition moves to the new template
    await k("patch", "statefulset", "db", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"busybox:2"}]')

    async def canary():
        sts, pods = await revisions()
        st = sts.get("status") or {}
        upd, cur = st.get("updateRevision"), st.get("currentRevision")
        if upd == cur or set(pods) != {"db-0", "db-1", "db-2"} or not all(map(running_ready, pods.values())):
            return None
        # the status counts follow the pods in a later sync: wait for both
        if rev(pods["db-2"]) == upd and rev(pods["db-0"]) == cur and rev(pods["db-1"]) == cur \
                and st.get("updatedReplicas") == 1 and st.get("currentReplicas") == 2:
            return sts, pods
        return None

    sts, pods = await until(api, ns, (STATEFULSETS, PODS), canary, "canary on db-2")
    assert image(pods["db-2"]) == "busybox:2" and image(pods["db-0"]) == image(pods["db-1"]) == "busybox:1"
    assert sts["status"]["updatedReplicas"] == 1 and sts["status"]["currentReplicas"] == 2

    # phased roll-out: partition 0 takes the rest
    await k("patch", "statefulset", "db", "--type=merge", "-p",
            '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    out = (await k("rollout", "status", "statefulset/db", "--timeout=120s")).stdout
    assert "partitioned roll out complete: 3 new pods have been updated" in out

    async def rolled():
        sts, pods = await revisions()
        st = sts.get("status") or {}
        done = (len(pods) == 3 and st.get("currentRevision") == st.get("updateRevision")
                and all(rev(p) == st["updateRevision"] and running_ready(p) for p in pods.values()))
        return (sts, pods) if done else None

    sts, pods = await until(api, ns, (STATEFULSETS, PODS), rolled, "full roll-out")
    assert {image(p) for p in pods.values()} == {"busybox:2"}

    # OnDelete: a new template replaces nothing until a pod is deleted by hand
    await k("patch", "statefulset", "db", "--type=merge", "-p",
            '{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null},'
            '"template":{"spec":{"containers":[{"name":"db","image":"busybox:3"}]}}}}')
    gen = (await api.resource(*STATEFULSETS).get("db", ns))["metadata"]["generation"]
    await k("wait", f"--for=jsonpath={{.status.observedGeneration}}={gen}", "statefulset/db", "--timeout=60s")
    sts, pods = await revisions()
    new_rev = sts["status"]["updateRevision"]
    assert new_rev != sts["status"]["currentRevision"]
    assert {image(p) for p in pods.values()} == {"busybox:2"} and len(pods) == 3
    old_uids = {n: p["metadata"]["uid"] for n, p in pods.items()}
    await k("delete", "pod", "db-0")

    async def replaced():
        _, pods = await revisions()
        p = pods.get("db-0")
        return pods if p and p["metadata"]["uid"] != old_uids["db-0"] and running_ready(p) else None

    pods = await until(api, ns, (PODS,), replaced, "db-0 recreated")
    assert rev(pods["db-0"]) == new_rev and image(pods["db-0"]) == "busybox:3"
    assert {n: pods[n]["metadata"]["uid"] for n in ("db-1", "db-2")} == {n: old_uids[n] for n in ("db-1", "db-2")}
    assert image(pods["db-1"]) == image(pods["db-2"]) == "busybox:2"


# ---------------------------------------------------------------------- DaemonSet
def daemonset(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": {"pool": "a"},
                                           "containers": [{"name": "agent", "image": "busybox:1"}]}}}}


async def test_daemonset_rolling_update_and_undo_on_every_node(cluster, api, ns):
    k = lambda *a, **kw: kubectl(cluster, *a, "-n", ns, **kw)  # noqa: E731
    await apply(cluster, ns, daemonset("agent"))
    await k("rollout", "status", "daemonset/agent", "--timeout=90s")
    pool = {f"sim-a-{i:04d}" for i in range(POOL_A)}

    async def one_per_node(want: str):
        pods = live_pods(await pods_of(api, ns, "app=agent"))
        nodes = [p["spec"].get("nodeName") for p in pods]
        ok = sorted(nodes) == sorted(pool) and all(image(p) == want and running_ready(p) for p in pods)
        return pods if ok else None

    first = await until(api, ns, (PODS,), lambda: one_per_node("busybox:1"), "one busybox:1 pod per node")
    first_hash = {p["metadata"]["labels"]["controller-revision-hash"] for p in first}

    await k("set", "image", "daemonset/agent", "agent=busybox:2")
    out = (await k("rollout", "status", "daemonset/agent", "--timeout=120s")).stdout
    assert 'daemon set "agent" successfully rolled out' in out
    await until(api, ns, (PODS,), lambda: one_per_node("busybox:2"), "one busybox:2 pod per node")
    history = (await k("rollout", "history", "daemonset/agent")).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    assert "rolled back" in (await k("rollout", "undo", "daemonset/agent")).stdout
    await k("rollout", "status", "daemonset/agent", "--timeout=120s")
    restored = await until(api, ns, (PODS,), lambda: one_per_node("busybox:1"), "busybox:1 back on every node")
    # the previous template itself came back: same revision hash as the first roll-out
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in restored} == first_hash
    ds = await api.resource(*DAEMONSETS).get("agent", ns)
    assert image(ds["spec"]["template"]) == "busybox:1"
    history = (await k("rollout", "history", "daemonset/agent")).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]


# ---------------------------------------------------------------------- Job, CronJob
async def test_job_completes(cluster, api, ns):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "calc"},
           "spec": {"completions": 2, "parallelism": 1, "template": {"spec": {
               "restartPolicy": "Never", "nodeSelector": {"pool": "a"},
               "containers": [{"name": "calc", "image": "busybox:1", "command": ["true"]}]}}}}
    await apply(cluster, ns, job)
    await kubectl(cluster, "wait", "-n", ns, "--for=condition=complete", "job/calc", "--timeout=90s")
    j = await api.resource(*JOBS).get("calc", ns)
    assert j["status"]["succeeded"] == 2 and j["status"].get("failed", 0) == 0 and j["status"]["completionTime"]

    async def completed_event():
        evs = [e for e in (await api.resource(*EVENTS).list(ns))["items"] if e["reason"] == "Completed"]
        return evs or None

    [ev] = await until(api, ns, (EVENTS,), completed_event, "Completed event")
    assert ev["message"] == "Job completed" and ev["involvedObject"]["name"] == "calc"


@pytest.mark.slow
async def test_cronjob_runs_a_job_to_completion(cluster, api, ns):
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
          "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
              "restartPolicy": "OnFailure", "nodeSelector": {"pool": "a"},
              "containers": [{"name": "tick", "image": "busybox:1", "command": ["true"]}]}}}}}}
    await apply(cluster, ns, cj)

    async def succeeded():  # the next minute boundary starts it
        c = await api.resource(*CRONJOBS).get("tick", ns)
        return c if (c.get("status") or {}).get("lastSuccessfulTime") else None

    c = await until(api, ns, (CRONJOBS, JOBS), succeeded, "a successful scheduled run", timeout=100)
    assert c["status"]["lastScheduleTime"]
    jobs = (await api.resource(*JOBS).list(ns))["items"]
    done = [j for j in jobs if any(x["type"] == "Complete" and x["status"] == "True"
                                  for x in (j.get("status") or {}).get("conditions") or [])]
    assert done and done[0]["metadata"]["ownerReferences"][0]["name"] == "tick"
    assert done[0]["metadata"]["name"].startswith("tick-")
    table = (await kubectl(cluster, "get", "cronjob", "tick", "-n", ns)).stdout
    assert "* * * * *" in table


# ---------------------------------------------------------------------- node failure
@pytest.mark.slow
async def test_silent_node_is_tainted_and_its_pod_replaced(cluster, api, ns):
    tag = secrets.token_hex(2)
    doomed = cluster.nodes(f"sim-x{tag}-", 1, "evict=yes")
    spare = cluster.nodes(f"sim-y{tag}-", 1, "evict=yes")
    [victim_node], [spare_node] = doomed.names, spare.names
    tolerate = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
                for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mover"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mover"}},
                  "template": {"metadata": {"labels": {"app": "mover"}}, "spec": {
                      "nodeSelector": {"evict": "yes"}, "tolerations": tolerate,
                      "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                          {"weight": 100, "preference": {"matchExpressions": [
                              {"key": "kubernetes.io/hostname", "operator": "In", "values": [victim_node]}]}}]}},
                      "containers": [{"name": "c", "image": "busybox:1"}]}}}}
    try:
        await apply(cluster, ns, d)

        async def running_on(node: str):
            pods = [p for p in live_pods(await pods_of(api, ns, "app=mover"))
                    if p["spec"].get("nodeName") == node and running_ready(p)]
            return pods or None

        [pod] = await until(api, ns, (PODS,), lambda: running_on(victim_node), "pod running on the doomed node")

        cluster.silence(doomed)

        async def tainted():
            n = await api.resource(*NODES).get(victim_node)
            ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            keys = {(t["key"], t["effect"]) for t in n["spec"].get("taints") or []}
            return n if ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in keys else None

        n = await wait_until(api, [(NODES, None)], tainted, 90, "doomed node Ready=Unknown and tainted")
        assert ("node.kubernetes.io/unreachable", "NoSchedule") in {(t["key"], t["effect"]) for t in n["spec"]["taints"]}

        async def evicted():
            p = await api.resource(*PODS).get(pod["metadata"]["name"], ns)
            return p if p["metadata"].get("deletionTimestamp") else None

        gone = await until(api, ns, (PODS,), evicted, "pod evicted from the silent node", timeout=60)
        assert any(c["type"] == "DisruptionTarget" and c["reason"] == "DeletionByTaintManager"
                   for c in gone["status"]["conditions"])
        [moved] = await until(api, ns, (PODS,), lambda: running_on(spare_node), "replacement on the spare node")
        assert moved["metadata"]["uid"] != pod["metadata"]["uid"]

        async def eviction_event():
            evs = [e for e in (await api.resource(*EVENTS).list(ns))["items"] if e["reason"] == "TaintManagerEviction"]
            return evs or None

        [ev] = await until(api, ns, (EVENTS,), eviction_event, "TaintManagerEviction event")
        assert ev["message"] == f"Marking for deletion Pod {ns}/{pod['metadata']['name']}"
    finally:
        spare.stop()
        # a deleted node's pods are collected by the pod GC, so the namespace can go
        await kubectl(cluster, "delete", "node", victim_node, spare_node, "--wait=false", check=False)


# ---------------------------------------------------------------------- PodDisruptionBudget
async def test_pdb_blocks_eviction_and_drain(cluster, api, ns):
    k = lambda *a, **kw: kubectl(cluster, *a, "-n", ns, **kw)  # noqa: E731
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "guarded"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "guarded"}},
                  "template": {"metadata": {"labels": {"app": "guarded"}}, "spec": {
                      "nodeSelector": {"pool": "a"}, "containers": [{"name": "c", "image": "busybox:1"}]}}}}
    await apply(cluster, ns, d)
    await k("create", "poddisruptionbudget", "guarded", "--selector=app=guarded", "--min-available=2")
    await k("rollout", "status", "deployment/guarded", "--timeout=90s")

    async def settled():
        pdb = await api.resource(*PDBS).get("guarded", ns)
        st = pdb.get("status") or {}
        ok = st.get("currentHealthy") == 2 and st.get("disruptionsAllowed") == 0 and \
            st.get("observedGeneration") == pdb["metadata"]["generation"]
        return pdb if ok else None

    await until(api, ns, (PDBS, PODS), settled, "PDB status: 2 healthy, 0 disruptions allowed")
    [victim, _] = live_pods(await pods_of(api, ns, "app=guarded"))
    name = victim["metadata"]["name"]

    # the eviction API, through the official Python client
    cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(cluster.srv.kubeconfig), client_configuration=cfg)
    with k8s.ApiClient(cfg) as c:
        core = k8s.CoreV1Api(c)
        with pytest.raises(ApiException) as e:
            await asyncio.to_thread(core.create_namespaced_pod_eviction, name, ns, k8s.V1Eviction(
                metadata=k8s.V1ObjectMeta(name=name, namespace=ns)))
    assert e.value.status == 429
    body = json.loads(e.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget guarded needs 2 healthy pods and has 2 currently"}]

    # kubectl drain retries the eviction until its timeout, then gives up; the node is uncordoned after
    node = victim["spec"]["nodeName"]
    try:
        p = await kubectl(cluster, "drain", node, "--pod-selector=app=guarded", "--ignore-daemonsets",
                          "--timeout=5s", check=False)
        assert p.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget" in p.stderr
    finally:
        await kubectl(cluster, "uncordon", node)
    still = await api.resource(*PODS).get(name, ns)
    assert still["metadata"]["uid"] == victim["metadata"]["uid"] and not still["metadata"].get("deletionTimestamp")
