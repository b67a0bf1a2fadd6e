"""Service cluster IPs and node ports, allocated by the API server, seen through kubectl."""

from __future__ import annotations

import ipaddress
import json


def svc(k, name):
    return json.loads(k.kubectl("get", "svc", name, "-o", "json").stdout)


def test_kubernetes_service_exists(kyb):
    s = svc(kyb, "kubernetes")
    assert s["spec"]["clusterIP"] == "10.43.0.1"
    assert s["spec"]["ports"][0]["port"] == 443


def test_cluster_ip_and_node_port_allocation(kyb):
    kyb.kubectl("create", "service", "nodeport", "np", "--tcp=80:8080")
    s = svc(kyb, "np")
    ip = s["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.43.0.0/16")
    assert s["spec"]["clusterIPs"] == [ip]
    assert 30000 <= s["spec"]["ports"][0]["nodePort"] <= 32767
    ips = kyb.kubectl("get", "ipaddresses", "-o", "name").stdout.split()
    assert f"ipaddress.networking.k8s.io/{ip}" in ips
    # the address is released with the Service
    kyb.kubectl("delete", "svc", "np")
    ips = kyb.kubectl("get", "ipaddresses", "-o", "name").stdout.split()
    assert f"ipaddress.networking.k8s.io/{ip}" not in ips


def test_requested_ip_is_exclusive(kyb):
    kyb.kubectl("create", "service", "clusterip", "fixed", "--tcp=80", "--clusterip=10.43.7.7")
    assert svc(kyb, "fixed")["spec"]["clusterIP"] == "10.43.7.7"
    p = kyb.kubectl("create", "service", "clusterip", "fixed2", "--tcp=80", "--clusterip=10.43.7.7", check=False)
    assert p.returncode != 0 and "provided IP is already allocated" in p.stderr
    assert "fixed2" not in kyb.kubectl("get", "svc", "-o", "name").stdout
    p = kyb.kubectl("create", "service", "clusterip", "outside", "--tcp=80", "--clusterip=192.0.2.1", check=False)
    assert p.returncode != 0 and "not in the valid range" in p.stderr


def test_headless_and_cluster_ip_immutable(kyb):
    kyb.kubectl("create", "service", "clusterip", "hl", "--clusterip=None")
    assert svc(kyb, "hl")["spec"]["clusterIP"] == "None"
    kyb.kubectl("create", "service", "clusterip", "imm", "--tcp=80")
    before = svc(kyb, "imm")["spec"]["clusterIP"]
    p = kyb.kubectl("patch", "svc", "imm", "-p", '{"spec":{"clusterIP":"10.43.8.8","clusterIPs":["10.43.8.8"]}}', check=False)
    assert p.returncode != 0
    assert svc(kyb, "imm")["spec"]["clusterIP"] == before
