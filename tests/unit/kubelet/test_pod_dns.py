"""Pod DNS config per dnsPolicy, dnsConfig merging, hostnames and the managed /etc/hosts."""

from __future__ import annotations

from kybernetes.kubelet import pod_dns
from kybernetes.kubelet.pod_status import go_duration

HOST = pod_dns.parse_resolv_conf("# comment\nnameserver 10.0.0.2\nnameserver 10.0.0.3 ; x\n"
                                 "search corp.example lab.example\noptions edns0 ndots:2\n")


def pod(**spec):
    return {"metadata": {"name": "web-0", "namespace": "shop"}, "spec": spec}


def test_parse_resolv_conf():
    assert HOST == pod_dns.DNS(["10.0.0.2", "10.0.0.3"], ["corp.example", "lab.example"], ["edns0", "ndots:2"])


def test_cluster_first():
    d = pod_dns.pod_dns(pod(), cluster_dns=["10.43.0.10"], cluster_domain="cluster.local", host=HOST)
    assert d.servers == ["10.43.0.10"]
    assert d.searches == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "lab.example"]
    assert d.options == ["ndots:5"]
    # no cluster DNS configured: the host's resolver, as upstream's fallback
    assert pod_dns.pod_dns(pod(), cluster_dns=[], cluster_domain="cluster.local", host=HOST) == HOST
    # hostNetwork with ClusterFirst uses the host's; ClusterFirstWithHostNet the cluster's
    assert pod_dns.pod_dns(pod(hostNetwork=True), cluster_dns=["10.43.0.10"], cluster_domain="c", host=HOST) == HOST
    d = pod_dns.pod_dns(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), cluster_dns=["10.43.0.10"],
                        cluster_domain="c", host=HOST)
    assert d.servers == ["10.43.0.10"]


def test_none_and_merge():
    p = pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.2.3.4"], "searches": ["a.b"],
                                         "options": [{"name": "ndots", "value": "1"}, {"name": "rotate"}]})
    assert pod_dns.pod_dns(p, cluster_dns=["9.9.9.9"], cluster_domain="c", host=HOST) == \
        pod_dns.DNS(["1.2.3.4"], ["a.b"], ["ndots:1", "rotate"])
    p = pod(dnsPolicy="Default", dnsConfig={"nameservers": ["10.0.0.2", "1.1.1.1", "8.8.8.8"],
                                            "options": [{"name": "ndots", "value": "3"}]})
    d = pod_dns.pod_dns(p, cluster_dns=[], cluster_domain="c", host=HOST)
    assert d.servers == ["10.0.0.2", "10.0.0.3", "1.1.1.1"]  # deduplicated, at most 3
    assert d.options == ["edns0", "ndots:3"]


def test_hostnames_and_hosts_file():
    assert pod_dns.hostname_and_domain(pod(), "cluster.local") == ("web-0", "")
    p = pod(hostname="h", subdomain="sub", setHostnameAsFQDN=True,
            hostAliases=[{"ip": "10.1.1.1", "hostnames": ["foo", "bar"]}])
    assert pod_dns.hostname_and_domain(p, "cluster.local") == ("h", "sub.shop.svc.cluster.local")
    assert pod_dns.sandbox_hostname(p, "cluster.local") == "h.sub.shop.svc.cluster.local"
    long = {"metadata": {"name": "a" * 62 + "-b" * 5, "namespace": "x"}, "spec": {}}
    assert pod_dns.hostname_and_domain(long, "c")[0] == "a" * 62
    text = pod_dns.hosts_file(p, ["10.42.0.7"], "cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.42.0.7\th.sub.shop.svc.cluster.local\th\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n10.1.1.1\tfoo\tbar\n")
    assert pod_dns.hosts_file(pod(), ["10.42.0.8"], "c").endswith("fe00::2\tip6-allrouters\n10.42.0.8\tweb-0\n")


def test_go_duration():
    assert [go_duration(x) for x in (10, 80, 300, 3600)] == ["10s", "1m20s", "5m0s", "1h0m0s"]
