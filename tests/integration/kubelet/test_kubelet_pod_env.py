"""What a container sees and how long a pod may run, on a real kubelet + containerd:
service environment variables (with enableServiceLinks, precedence and $(VAR) expansion),
envFrom/configMapKeyRef/secretKeyRef, activeDeadlineSeconds (also shortened later), pod
sysctls (safe ones in /proc/sys, allowed unsafe ones, forbidden ones rejected with
SysctlForbidden) and the /etc/hosts of a host-network pod."""

from __future__ import annotations

import os
import socket

import pytest
import pytest_asyncio

from fixtures.images import BUSYBOX_REF
from kl_helpers import drain_and_stop, pod_events, wait_for
from kybernetes.client import Client, NotFound
from kybernetes.cri import CRIClient
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]

NODE = "node-env"
NS, OTHER = "kl-env", "kl-env-other"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def pod(name, script, ns=NS, policy="Never", container=None, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": NODE, "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script], **(container or {})}], **spec}}


def service(name, ns, *ports):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": list(ports)}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(env):
    srv, rt = env["srv"], env["rt"]
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        c.cri_endpoint = rt.endpoint  # for tests that look inside containers through CRI
        nss = c.resource("", "v1", "namespaces")
        sas = c.resource("", "v1", "serviceaccounts", namespaced=True)
        svcs = c.resource("", "v1", "services", namespaced=True)
        for ns in (NS, OTHER):
            await nss.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        # the services exist before the kubelet lists them
        await svcs.create(service("foo-svc", NS, {"name": "http", "port": 8080, "protocol": "TCP"},
                                  {"name": "dns", "port": 53, "protocol": "UDP"}))
        await svcs.create(service("bar", OTHER, {"port": 80}))
        for ns in (NS, OTHER):
            async def sa_ready(ns=ns):
                try:
                    return await sas.get("default", ns)
                except NotFound:
                    return None
            await wait_for(sa_ready, 30)
        kl = Kubelet(c, rt.endpoint, node_name=NODE, data_dir=env["data_dir"], node_ip="127.0.0.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"],
                     allowed_unsafe_sysctls=["net.core.somaxconn"])
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        try:
            yield c, pods
        finally:
            for ns in (NS, OTHER):
                for p in (await pods.list(ns))["items"]:
                    try:
                        await pods.delete(p["metadata"]["name"], ns, grace_period_seconds=0)
                    except NotFound:
                        pass

            await drain_and_stop(kl, NS)


async def finished(pods, name, ns=NS, timeout=60):
    """The pod once it is Succeeded or Failed."""
    async def done():
        p = await pods.get(name, ns)
        return p if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None
    return await wait_for(done, timeout)


def output(p) -> str:
    return p["status"]["containerStatuses"][0]["state"]["terminated"].get("message", "")


def env_of(p) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output(p).splitlines() if "=" in line)


ENV_SCRIPT = 'env | sort > /dev/termination-log; echo "ARGS=$0 $1" >> /dev/termination-log'


async def test_service_environment(node):
    c, pods = node
    kube = await c.resource("", "v1", "services", namespaced=True).get("kubernetes", "default")
    foo = await c.resource("", "v1", "services", namespaced=True).get("foo-svc", NS)
    kip, fip = kube["spec"]["clusterIP"], foo["spec"]["clusterIP"]
    links = pod("links", ENV_SCRIPT, container={
        "args": ["$(FOO_SVC_SERVICE_HOST)", "$(KUBERNETES_SERVICE_PORT)"],
        "env": [{"name": "FOO_SVC_SERVICE_PORT", "value": "overridden"},
                {"name": "FOO_URL", "value": "http://$(FOO_SVC_SERVICE_HOST):$(FOO_SVC_PORT_8080_TCP_PORT)"}]})
    await pods.create(links)
    await pods.create(pod("nolinks", ENV_SCRIPT, enableServiceLinks=False))
    p = await finished(pods, "links")
    assert p["status"]["phase"] == "Succeeded", p["status"]
    env = env_of(p)
    assert env["KUBERNETES_SERVICE_HOST"] == kip and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443" and env["KUBERNETES_PORT"] == f"tcp://{kip}:443"
    assert env["FOO_SVC_SERVICE_HOST"] == fip
    assert env["FOO_SVC_SERVICE_PORT"] == "overridden"  # the container's env wins
    assert env["FOO_SVC_SERVICE_PORT_HTTP"] == "8080" and env["FOO_SVC_SERVICE_PORT_DNS"] == "53"
    assert env["FOO_SVC_PORT"] == f"tcp://{fip}:8080"
    assert env["FOO_SVC_PORT_53_UDP"] == f"udp://{fip}:53" and env["FOO_SVC_PORT_53_UDP_PROTO"] == "udp"
    assert env["FOO_SVC_PORT_8080_TCP_ADDR"] == fip and env["FOO_SVC_PORT_8080_TCP_PORT"] == "8080"
    assert env["FOO_URL"] == f"http://{fip}:8080"
    assert env["ARGS"] == f"{fip} 443"  # $(VAR) in args expands service variables too
    assert not any(k.startswith("BAR_") for k in env)  # another namespace's service
    p = await finished(pods, "nolinks")
    env = env_of(p)
    assert env["KUBERNETES_SERVICE_HOST"] == kip and env["KUBERNETES_PORT_443_TCP_ADDR"] == kip
    assert not any(k.startswith(("FOO_SVC_", "BAR_")) for k in env)


async def test_active_deadline(node):
    c, pods = node
    await pods.create(pod("deadline", "sleep 3600", activeDeadlineSeconds=2))
    await pods.create(pod("shortened", "sleep 3600", activeDeadlineSeconds=3600))

    async def running(name):
        p = await pods.get(name, NS)
        cs = (p.get("status") or {}).get("containerStatuses") or []
        return bool(cs and "running" in cs[0]["state"])
    await wait_for(lambda: running("shortened"), 60)
    # lengthening is refused; shortening takes effect on the running pod
    with pytest.raises(Exception, match="must be less than or equal to previous value"):
        await pods.patch("shortened", {"spec": {"activeDeadlineSeconds": 7200}}, "merge", NS)
    await pods.patch("shortened", {"spec": {"activeDeadlineSeconds": 1}}, "merge", NS)
    for name in ("deadline", "shortened"):
        p = await finished(pods, name, timeout=60)
        st = p["status"]
        assert (st["phase"], st["reason"], st["message"]) == ("Failed", "DeadlineExceeded", DEADLINE_MESSAGE)
        assert "terminated" in st["containerStatuses"][0]["state"]
        assert not any(cd["type"] == "DisruptionTarget" for cd in st["conditions"])

        async def event(name=name):
            evs = [e for e in await pod_events(c, name, NS) if e[1] == "DeadlineExceeded"]
            return evs or None
        evs = await wait_for(event, 30)
        assert evs[0][:3] == ("Normal", "DeadlineExceeded", DEADLINE_MESSAGE)


async def test_sysctls(node):
    c, pods = node
    cat = "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/core/somaxconn > /dev/termination-log"
    await pods.create(pod("sysctl-ok", cat, securityContext={"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "net.core.somaxconn", "value": "1234"}]}))
    await pods.create(pod("sysctl-bad", "true", securityContext={"sysctls": [
        {"name": "kernel.msgmax", "value": "65536"}]}))
    p = await finished(pods, "sysctl-ok")
    assert p["status"]["phase"] == "Succeeded", p["status"]
    assert output(p).split() == ["1", "1234"]
    p = await finished(pods, "sysctl-bad")
    st = p["status"]
    assert (st["phase"], st["reason"]) == ("Failed", "SysctlForbidden")
    assert st["message"] == 'Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted'
    assert not st.get("containerStatuses")

    async def event():
        evs = [e for e in await pod_events(c, "sysctl-bad", NS) if e[1] == "SysctlForbidden"]
        return evs or None
    assert (await wait_for(event, 30))[0][0] == "Warning"
    # the API validates sysctl names
    with pytest.raises(Exception, match="must have at most 253 characters and match regex"):
        await pods.create(pod("sysctl-invalid", "true", securityContext={"sysctls": [{"name": "Bad_Name", "value": "1"}]}))


async def test_env_from_configmap_and_secret(node):
    c, pods = node
    await c.resource("", "v1", "configmaps", namespaced=True).create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": NS},
         "data": {"COLOUR": "blue", "FOO_SVC_SERVICE_HOST": "from-configmap"}})
    await c.resource("", "v1", "secrets", namespaced=True).create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec", "namespace": NS},
         "stringData": {"password": "s3cret"}})
    await pods.create(pod("from-sources", ENV_SCRIPT, container={
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "S_", "secretRef": {"name": "sec"}}],
        "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
                {"name": "SAID", "value": "$(COLOUR)-$(PASSWORD)"}]}))
    await pods.create(pod("missing-cm", "true", container={"envFrom": [{"configMapRef": {"name": "nope"}}]}))
    p = await finished(pods, "from-sources")
    env = env_of(p)
    assert (env["COLOUR"], env["S_password"], env["PASSWORD"], env["SAID"]) == ("blue", "s3cret", "s3cret", "blue-s3cret")
    assert env["FOO_SVC_SERVICE_HOST"] == "from-configmap"  # envFrom overrides a service variable
    assert "MAYBE" not in env

    async def config_error():
        p = await pods.get("missing-cm", NS)
        cs = ((p.get("status") or {}).get("containerStatuses") or [{}])[0]
        w = (cs.get("state") or {}).get("waiting") or {}
        return w if w.get("reason") == "CreateContainerConfigError" else None
    w = await wait_for(config_error, 60)
    assert w["message"] == 'configmap "nope" not found'

    async def event():
        evs = [e for e in await pod_events(c, "missing-cm", NS) if e[1] == "Failed"]
        return evs or None
    assert (await wait_for(event, 30))[0][:3] == ("Warning", "Failed", 'Error: configmap "nope" not found')


async def test_host_network_pod_gets_the_nodes_hosts_file(node):
    c, pods = node
    await pods.create(pod("hostnet", "cat /etc/hosts > /dev/termination-log; hostname >> /dev/termination-log",
                          hostNetwork=True, hostAliases=[{"ip": "10.9.8.7", "hostnames": ["alias-x", "alias-y"]}]))
    p = await finished(pods, "hostnet")
    assert p["status"]["phase"] == "Succeeded", p["status"]
    assert p["status"]["podIP"] == "127.0.0.1" == p["status"]["hostIP"]  # the node's address
    with open("/etc/hosts") as f:
        node_hosts = f.read()
    want = ("# Kubernetes-managed hosts file (host network).\n" + node_hosts +
            "\n# Entries added by HostAliases.\n10.9.8.7\talias-x\talias-y\n" + socket.gethostname() + "\n")
    assert output(p) == want


async def test_process_namespace_per_container_unless_shared(node):
    """Each container has its own PID namespace (its command is PID 1) unless the pod sets
    shareProcessNamespace, when all see each other and the sandbox's pause process."""
    c, pods = node
    for name, share in (("pid-own", False), ("pid-shared", True)):
        spec = pod(name, "exec sleep 3600", policy="Always", shareProcessNamespace=share)
        spec["spec"]["containers"].append({"name": "peer", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                           "command": ["sleep", "3601"]})
        await pods.create(spec)
    seen = {}
    async with CRIClient(c.cri_endpoint) as cri:
        for name in ("pid-own", "pid-shared"):
            async def both_running(name=name):
                st = (await pods.get(name, NS)).get("status") or {}
                cs = {x["name"]: x for x in st.get("containerStatuses") or []}
                ok = len(cs) == 2 and all("running" in x["state"] for x in cs.values())
                return cs["main"]["containerID"].split("://", 1)[1] if ok else None
            cid = await wait_for(both_running, 60)
            r = await cri.exec_sync(cid, ["ps"], timeout=10)
            assert r.exit_code == 0, r.stderr
            # busybox ps: PID USER COMMAND
            seen[name] = [line.split(None, 2) for line in r.stdout.decode().splitlines()[1:]]
    own = {row[2]: row[0] for row in seen["pid-own"] if len(row) == 3}
    assert own.get("sleep 3600") == "1" and "sleep 3601" not in own, seen["pid-own"]
    shared = {row[2]: row[0] for row in seen["pid-shared"] if len(row) == 3}
    assert {"sleep 3600", "sleep 3601"} <= set(shared) and shared["sleep 3600"] != "1", seen["pid-shared"]
    for name in ("pid-own", "pid-shared"):
        await pods.delete(name, NS, grace_period_seconds=0)
