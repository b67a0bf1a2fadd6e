"""ResourceQuota admission and the quota controller against a real `kyb server`."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

NS = "quota"


def _wait(fn, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get_json(kyb, *args):
    return json.loads(kyb.kubectl("get", *args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def ns(kyb):
    kyb.kubectl("create", "namespace", NS)
    _wait(lambda: kyb.kubectl("get", "sa", "default", "-n", NS, check=False).returncode == 0, "default sa")
    return NS


def apply(kyb, ns, obj):
    kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def quota(kyb, ns, name, hard):
    apply(kyb, ns, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard}})
    # admission enforces status.hard, which the controller fills
    return _wait(lambda: (lambda q: q if (q.get("status") or {}).get("hard") == hard else None)(
        get_json(kyb, "quota", name, "-n", ns)), f"quota {name} status")


def pod(name, requests=None, limits=None):
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": res}]}}


def used(kyb, ns, name):
    return (get_json(kyb, "quota", name, "-n", ns).get("status") or {}).get("used") or {}


def test_pod_count_quota_rejects_third_and_frees_on_delete(kyb, ns):
    q = quota(kyb, ns, "pods", {"pods": "2"})
    assert q["status"]["used"] == {"pods": "0"}
    kyb.kubectl("run", "p1", "--image=nginx", "-n", ns)
    kyb.kubectl("run", "p2", "--image=nginx", "-n", ns)
    assert used(kyb, ns, "pods") == {"pods": "2"}
    p = kyb.kubectl("run", "p3", "--image=nginx", "-n", ns, check=False)
    assert p.returncode != 0
    assert ('Error from server (Forbidden): pods "p3" is forbidden: exceeded quota: pods, '
            'requested: pods=1, used: pods=2, limited: pods=2') in p.stderr
    assert kyb.kubectl("get", "pod", "p3", "-n", ns, check=False).returncode != 0
    assert used(kyb, ns, "pods") == {"pods": "2"}
    # dry run is checked but never charged
    p = kyb.kubectl("run", "p4", "--image=nginx", "-n", ns, "--dry-run=server", check=False)
    assert "exceeded quota: pods" in p.stderr
    # deleting a pod: the controller recounts and the quota admits again
    kyb.kubectl("delete", "pod", "p1", "-n", ns, "--grace-period=0", "--force", "--wait=false")
    _wait(lambda: kyb.kubectl("get", "pod", "p1", "-n", ns, check=False).returncode != 0, "p1 gone")
    _wait(lambda: used(kyb, ns, "pods") == {"pods": "1"}, "usage to drop")
    kyb.kubectl("run", "p3", "--image=nginx", "-n", ns)
    assert used(kyb, ns, "pods") == {"pods": "2"}
    kyb.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", "--wait=false")
    kyb.kubectl("delete", "quota", "pods", "-n", ns)


def test_compute_quota_requests_and_must_specify(kyb, ns):
    quota(kyb, ns, "compute", {"requests.cpu": "1", "requests.memory": "1Gi"})
    p = kyb.kubectl("run", "bare", "--image=nginx", "-n", ns, check=False)
    assert p.returncode != 0
    assert ('pods "bare" is forbidden: failed quota: compute: must specify requests.cpu for: bare; '
            'requests.memory for: bare') in p.stderr
    apply(kyb, ns, pod("a", {"cpu": "600m", "memory": "512Mi"}))
    assert used(kyb, ns, "compute") == {"requests.cpu": "600m", "requests.memory": "512Mi"}
    p = kyb.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(pod("b", {"cpu": "500m", "memory": "256Mi"})),
                    check=False)
    assert p.returncode != 0
    assert ('exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, '
            'limited: requests.cpu=1') in p.stderr
    apply(kyb, ns, pod("b", {"cpu": "400m", "memory": "512Mi"}))
    assert used(kyb, ns, "compute") == {"requests.cpu": "1", "requests.memory": "1Gi"}
    out = kyb.kubectl("describe", "quota", "compute", "-n", ns).stdout
    assert "requests.cpu     1     1" in out and "requests.memory  1Gi   1Gi" in out, out
    kyb.kubectl("delete", "pod", "a", "-n", ns, "--grace-period=0", "--force", "--wait=false")
    _wait(lambda: used(kyb, ns, "compute") == {"requests.cpu": "400m", "requests.memory": "512Mi"}, "usage drop")
    kyb.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", "--wait=false")
    kyb.kubectl("delete", "quota", "compute", "-n", ns)


def test_object_counts(kyb, ns):
    quota(kyb, ns, "objects", {"configmaps": "2", "count/secrets": "1", "services": "1",
                               "services.nodeports": "0", "count/deployments.apps": "1"})
    kyb.kubectl("create", "secret", "generic", "s1", "-n", ns)
    p = kyb.kubectl("create", "secret", "generic", "s2", "-n", ns, check=False)
    assert ('exceeded quota: objects, requested: count/secrets=1, used: count/secrets=1, '
            'limited: count/secrets=1') in p.stderr
    p = kyb.kubectl("create", "service", "nodeport", "np", "--tcp=80:80", "-n", ns, check=False)
    assert ('exceeded quota: objects, requested: services.nodeports=1, used: services.nodeports=0, '
            'limited: services.nodeports=0') in p.stderr
    kyb.kubectl("create", "service", "clusterip", "web", "--tcp=80:80", "-n", ns)
    kyb.kubectl("create", "deployment", "d1", "--image=nginx", "-n", ns)
    p = kyb.kubectl("create", "deployment", "d2", "--image=nginx", "-n", ns, check=False)
    assert "exceeded quota: objects, requested: count/deployments.apps=1" in p.stderr
    u = used(kyb, ns, "objects")
    assert u["count/secrets"] == "1" and u["services"] == "1" and u["count/deployments.apps"] == "1"
    kyb.kubectl("delete", "secret", "s1", "-n", ns)
    _wait(lambda: used(kyb, ns, "objects")["count/secrets"] == "0", "secret usage drop")


async def test_periodic_resync_corrects_tampered_usage(kyb, ns):
    """A status-only change is not recounted on its own; the periodic resync (injectable
    period) puts it right."""
    from kybernetes.client.rest import Client
    from kybernetes.controllers.resourcequota import ResourceQuotaController

    quota(kyb, ns, "periodic", {"count/configmaps": "5"})
    base = used(kyb, ns, "periodic")["count/configmaps"]
    client = Client.from_kubeconfig(kyb.kubeconfig)
    ctl = ResourceQuotaController(client, resync_period=0.3)
    try:
        await ctl.start(sync_timeout=10)
        await asyncio.sleep(0.5)  # past the first pass over the quotas the informer adds
        kyb.kubectl("patch", "quota", "periodic", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"used": {"count/configmaps": "4"}}}))
        seen = used(kyb, ns, "periodic")["count/configmaps"]
        assert seen in ("4", base)
        deadline = time.monotonic() + 10
        while used(kyb, ns, "periodic")["count/configmaps"] != base:
            assert time.monotonic() < deadline, "resync did not correct the usage"
            await asyncio.sleep(0.1)
    finally:
        await ctl.stop()
        await client.close()
