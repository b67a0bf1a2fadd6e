"""`kyb agent` and `kyb server`'s built-in node hand the kubelet the cluster DNS address and
domain, so pods with dnsPolicy ClusterFirst on any node get the cluster's resolv.conf; without
--cluster-dns there is none (such pods fall back to the node's resolv.conf, as upstream)."""

from __future__ import annotations

import argparse

import pytest

from kybernetes.cli import agent, server
from kybernetes.client import Client
from kybernetes.kubelet import containerd, kubelet


def agent_args(*argv):
    p = argparse.ArgumentParser()
    agent.add_arguments(p)
    return p.parse_args(list(argv))


def server_args(*argv):
    p = argparse.ArgumentParser()
    server.add_arguments(p)
    return p.parse_args(list(argv))


def test_defaults_and_flags():
    for args in (agent_args(), server_args()):
        opts = agent.kubelet_options(args)
        assert (opts["cluster_dns"], opts["cluster_domain"]) == ([], "cluster.local")
    opts = agent.kubelet_options(agent_args("--cluster-dns", "10.0.0.53, 10.0.0.54", "--cluster-domain", "corp.lan"))
    assert (opts["cluster_dns"], opts["cluster_domain"]) == (["10.0.0.53", "10.0.0.54"], "corp.lan")


class Runtime:
    """An existing CRI socket as far as start_node_agent can tell."""

    endpoint = "unix:///run/kyb-test-nonexistent.sock"
    netns = None

    async def start(self):
        return self

    async def stop(self, **_):
        return None


@pytest.mark.parametrize("argv", [(), ("--cluster-dns", "10.0.0.53", "--cluster-domain", "corp.lan")])
async def test_agent_kubelet_gets_them(monkeypatch, tmp_path, argv):
    monkeypatch.setattr(containerd, "container_runtime", lambda *a, **kw: Runtime())
    started = []

    async def start(self):
        started.append(self)
        return self
    monkeypatch.setattr(kubelet.Kubelet, "start", start)
    args = agent_args(*argv)
    client = Client("https://127.0.0.1:9")
    node = await agent.start_node_agent(client, node_name="n1", data_dir=tmp_path,
                                        runtime_endpoint=Runtime.endpoint, **agent.kubelet_options(args))
    try:
        (kl,) = started
        assert node.kubelet is kl
        want = (["10.0.0.53"], "corp.lan") if argv else ([], "cluster.local")
        # the pod workers write each sandbox's resolv.conf from these
        assert (kl.workers.cluster_dns, kl.workers.cluster_domain) == want
    finally:
        await kl.cri.close()
        await client.close()
