"""The API server's endpoint reconciler: leases in a real SQLite store, objects through a
small in-memory stand-in for the two resource handles."""

from __future__ import annotations

import copy
import time

import orjson
import pytest

from kybernetes.apiserver import endpoint_reconciler as er
from kybernetes.client.errors import NotFound
from kybernetes.storage import SQLiteStore


class Handle:
    """get/create/update of one resource, as the client's ResourceHandle offers them."""

    def __init__(self) -> None:
        self.objs: dict[str, dict] = {}
        self.writes = 0

    async def get(self, name, namespace=None):
        if name not in self.objs:
            raise NotFound({"code": 404, "reason": "NotFound", "message": f'"{name}" not found'})
        return copy.deepcopy(self.objs[name])

    async def create(self, obj, namespace=None, *, field_manager=None):
        assert field_manager == "kube-apiserver"
        self.writes += 1
        self.objs[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj

    async def update(self, obj, namespace=None, *, field_manager=None):
        assert field_manager == "kube-apiserver"
        self.writes += 1
        self.objs[obj["metadata"]["name"]] = copy.deepcopy(obj)
        return obj


class FakeClient:
    def __init__(self) -> None:
        self.handles = {"endpoints": Handle(), "endpointslices": Handle(), "services": Handle()}

    def resource(self, group, version, plural):
        return self.handles[plural]


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "state.db"), compact_interval=0)
    await s.start()
    yield s
    await s.close()


def reconciler(store, client, ip="10.0.0.1", port=6443, holder=None):
    return er.EndpointReconciler(store, client, ip, port, interval=3600, holder=holder)


def ips_of(client) -> tuple[list[str], list[str]]:
    ep = client.handles["endpoints"].objs.get("kubernetes") or {}
    sl = client.handles["endpointslices"].objs.get("kubernetes") or {}
    return ([a["ip"] for s in ep.get("subsets") or [] for a in s["addresses"]],
            [e["addresses"][0] for e in sl.get("endpoints") or []])


async def test_publishes_endpoints_and_slice_as_upstream(store) -> None:
    c = FakeClient()
    r = reconciler(store, c)
    await r.start()
    try:
        assert c.handles["endpoints"].objs["kubernetes"] == {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                         "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]}
        assert c.handles["endpointslices"].objs["kubernetes"] == {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}
        writes = c.handles["endpoints"].writes
        await r._round()  # nothing changed: nothing written
        assert c.handles["endpoints"].writes == writes
    finally:
        await r.stop()


async def test_servers_share_and_only_remove_themselves(store) -> None:
    c = FakeClient()
    a, b = reconciler(store, c, "10.0.0.2"), reconciler(store, c, "10.0.0.1")
    await a.start()
    await b.start()
    await a._round()
    assert ips_of(c) == (["10.0.0.1", "10.0.0.2"], ["10.0.0.1", "10.0.0.2"])
    await a.stop()
    assert ips_of(c) == (["10.0.0.1"], ["10.0.0.1"])
    # the last server leaves its address: upstream never erases every endpoint
    await b.stop()
    assert ips_of(c) == (["10.0.0.1"], ["10.0.0.1"])


async def test_same_address_stays_while_one_server_on_it_lives(store) -> None:
    c = FakeClient()
    a, b = reconciler(store, c, holder="a"), reconciler(store, c, holder="b")
    await a.start()
    await b.start()
    await a.stop()
    assert ips_of(c) == (["10.0.0.1"], ["10.0.0.1"])
    assert [kv.key for kv in (await store.list(er.LEASE_PREFIX)).items] == ["/registry/masterleases/10.0.0.1/b"]
    await b.stop()


async def test_expired_leases_of_dead_servers_are_dropped(store) -> None:
    c = FakeClient()
    dead = orjson.dumps({"ip": "10.0.0.9", "port": 6443, "holder": "x", "expires": time.time() - 1})
    await store.create(er.lease_key("10.0.0.9", "x"), dead)
    r = reconciler(store, c)
    await r.start()
    try:
        assert ips_of(c) == (["10.0.0.1"], ["10.0.0.1"])
        assert [kv.key for kv in (await store.list(er.LEASE_PREFIX)).items] == [er.lease_key("10.0.0.1", r.holder)]
    finally:
        await r.stop()


async def test_someone_elses_edit_is_put_right_keeping_extra_labels(store) -> None:
    c = FakeClient()
    r = reconciler(store, c)
    await r.start()
    try:
        ep = c.handles["endpoints"].objs["kubernetes"]
        ep["subsets"][0]["addresses"] = [{"ip": "192.0.2.7"}]
        ep["metadata"]["labels"] = {"extra": "x"}
        await r._round()
        ep = c.handles["endpoints"].objs["kubernetes"]
        assert ep["subsets"][0]["addresses"] == [{"ip": "10.0.0.1"}]
        assert ep["metadata"]["labels"] == {"extra": "x", "endpointslice.kubernetes.io/skip-mirror": "true"}
    finally:
        await r.stop()


def test_choice_is_deterministic_and_ipv6_only_slices() -> None:
    leases = [er.Lease("10.0.0.10", 7443, "b", 0), er.Lease("10.0.0.9", 6443, "a", 0)]
    assert er.choose(leases) == (["10.0.0.9", "10.0.0.10"], 6443)
    assert er.choose(list(reversed(leases))) == (["10.0.0.9", "10.0.0.10"], 6443)
    assert er.desired_slice(["fd00::1"], 6443)["addressType"] == "IPv6"
    assert er.desired_slice(["fd00::1", "10.0.0.1"], 6443)["addressType"] == "IPv4"


async def test_deleted_kubernetes_service_is_recreated_on_its_ip(store) -> None:
    c = FakeClient()
    r = er.EndpointReconciler(store, c, "10.0.0.1", 6443, interval=3600, service_ip="10.96.0.1")
    await r.start()
    try:
        assert c.handles["services"].objs["kubernetes"] == {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ipFamilyPolicy": "SingleStack",
                     "sessionAffinity": "None",
                     "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]}}
        writes = c.handles["services"].writes
        await r._round()  # in shape: nothing written
        assert c.handles["services"].writes == writes
        del c.handles["services"].objs["kubernetes"]
        await r._round()
        assert c.handles["services"].objs["kubernetes"]["spec"]["clusterIP"] == "10.96.0.1"
    finally:
        await r.stop()


async def test_changed_ports_and_type_are_reset_other_edits_kept(store) -> None:
    c = FakeClient()
    r = er.EndpointReconciler(store, c, "10.0.0.1", 6443, interval=3600, service_ip="10.96.0.1")
    await r.start()
    try:
        svc = c.handles["services"].objs["kubernetes"]
        svc["metadata"]["labels"]["team"] = "infra"
        svc["spec"]["type"] = "NodePort"
        svc["spec"]["ports"] = [{"name": "https", "protocol": "TCP", "port": 8443, "targetPort": 6443,
                                 "nodePort": 30443}]
        await r._round()
        svc = c.handles["services"].objs["kubernetes"]
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]
        assert svc["metadata"]["labels"]["team"] == "infra"
        # an appProtocol added to the port is a difference too (upstream compares whole ports)
        svc["spec"]["ports"][0]["appProtocol"] = "https"
        await r._round()
        assert "appProtocol" not in c.handles["services"].objs["kubernetes"]["spec"]["ports"][0]
    finally:
        await r.stop()


async def test_a_failing_service_write_does_not_stop_the_endpoints(store) -> None:
    c = FakeClient()

    async def refuse(obj, namespace=None, *, field_manager=None):
        raise RuntimeError("refused")

    c.handles["services"].create = refuse
    r = er.EndpointReconciler(store, c, "10.0.0.1", 6443, interval=3600, service_ip="10.96.0.1")
    await r.start()
    try:
        assert ips_of(c) == (["10.0.0.1"], ["10.0.0.1"])
    finally:
        await r.stop()
