"""Container states and pod identity on a real kubelet + containerd: CrashLoopBackOff with
upstream's message and lastState, OOMKilled under a memory limit, and the sandbox's
hostname, /etc/hosts and resolv.conf for dnsPolicy ClusterFirst and None."""

from __future__ import annotations

import os

import pytest

from fixtures.images import BUSYBOX_REF
from kl_helpers import drain_and_stop, pod_events, wait_for
from kybernetes.client import Client
from kybernetes.kubelet.kubelet import Kubelet

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd, runc, network namespaces)")]


def pod(name, script, policy="Always", **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "node-s", "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": BUSYBOX_REF, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script],
                                     **spec.pop("container", {})}], **spec}}


async def test_states_and_dns(env, tmp_path):
    srv, rt = env["srv"], env["rt"]
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.88.78.254\nsearch node.example\n")
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        kl = Kubelet(c, rt.endpoint, node_name="node-s", data_dir=env["data_dir"], node_ip="10.88.78.1",
                     pod_log_root=rt.pod_log_root, cgroup_root=env["name"], cluster_dns=["10.43.0.10"],
                     cluster_domain="cluster.local", resolv_conf=str(resolv))
        await kl.start()
        pods = c.resource("", "v1", "pods", namespaced=True)
        names = ["crash", "oom", "dns-cluster", "dns-none"]
        try:
            await pods.create(pod("crash", "echo crashing; exit 1"))
            await pods.create(pod("oom", "head -c 64m /dev/zero | tail", policy="Never",
                                  container={"resources": {"limits": {"memory": "16Mi"}}}))
            await pods.create(pod("dns-cluster", "sleep 3600", hostname="h", subdomain="sub",
                                  hostAliases=[{"ip": "10.1.2.3", "hostnames": ["alias-a", "alias-b"]}]))
            await pods.create(pod("dns-none", "sleep 3600", dnsPolicy="None",
                                  dnsConfig={"nameservers": ["10.88.78.53"], "searches": ["a.example"],
                                             "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))

            async def main_status(name, pred):
                p = await pods.get(name, "default")
                cs = ((p.get("status") or {}).get("containerStatuses") or [None])[0]
                return (p, cs) if cs and pred(p, cs) else None

            p, cs = await wait_for(lambda: main_status(
                "crash", lambda p, cs: cs["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"), 60)
            uid = p["metadata"]["uid"]
            assert cs["state"]["waiting"]["message"] == \
                f"back-off 10s restarting failed container=main pod=crash_default({uid})"
            assert cs["restartCount"] >= 1 and cs["ready"] is False
            last = cs["lastState"]["terminated"]
            assert (last["exitCode"], last["reason"]) == (1, "Error")
            assert p["status"]["phase"] == "Running"

            async def crash_events():
                evs = {e[1]: e for e in await pod_events(c, "crash")}
                return evs if {"Pulled", "Created", "Started", "BackOff"} <= set(evs) else None
            evs = await wait_for(crash_events, 30)
            assert evs["BackOff"][:4] == ("Warning", "BackOff", "Back-off restarting failed container main in pod "
                                          f"crash_default({uid})", "spec.containers{main}")
            assert evs["Pulled"][2] == f'Container image "{BUSYBOX_REF}" already present on machine'
            assert evs["Created"][2] == "Created container: main" and evs["Started"][2] == "Started container main"
            assert evs["Started"][4] >= 2  # repeats fold into one event with a count
            # after the 10 s back-off the third instance starts and the first is removed with its
            # termination-message file: only the current and previous instances keep one
            await wait_for(lambda: main_status("crash", lambda p, cs: cs["restartCount"] >= 2), 40)
            msg_dir = env["data_dir"] / "pods" / uid / "containers" / "main"
            assert len(list(msg_dir.iterdir())) == 2

            p, cs = await wait_for(lambda: main_status("oom", lambda p, cs: p["status"]["phase"] == "Failed"), 60)
            term = cs["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (137, "OOMKilled")

            async def sh(name, script):
                p = await pods.get(name, "default")
                uid = p["metadata"]["uid"]
                [ctr] = await kl.cri.list_containers(labels={"io.kubernetes.pod.uid": uid})
                r = await kl.cri.exec_sync(ctr.id, ["sh", "-c", script], timeout=10)
                return r.stdout.decode()

            for n in ("dns-cluster", "dns-none"):
                await wait_for(lambda: main_status(n, lambda p, cs: "running" in cs["state"]), 60)
            p = await pods.get("dns-cluster", "default")
            ip = p["status"]["podIP"]
            assert (await sh("dns-cluster", "hostname")).strip() == "h"
            hosts = await sh("dns-cluster", "cat /etc/hosts")
            assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
            assert f"{ip}\th.sub.default.svc.cluster.local\th\n" in hosts
            assert hosts.endswith("# Entries added by HostAliases.\n10.1.2.3\talias-a\talias-b\n")
            resolv_c = (await sh("dns-cluster", "cat /etc/resolv.conf")).split("\n")
            assert "nameserver 10.43.0.10" in resolv_c
            assert "search default.svc.cluster.local svc.cluster.local cluster.local node.example" in resolv_c
            assert "options ndots:5" in resolv_c
            resolv_n = (await sh("dns-none", "cat /etc/resolv.conf")).split("\n")
            assert "nameserver 10.88.78.53" in resolv_n and "search a.example" in resolv_n
            assert "options ndots:2 edns0" in resolv_n
            assert not any(line.startswith("nameserver 10.43") for line in resolv_n)
            assert (await sh("dns-none", "hostname")).strip() == "dns-none"
        finally:
            for n in names:
                try:
                    await pods.delete(n, "default", grace_period_seconds=0)
                except Exception:
                    pass

            await drain_and_stop(kl)
