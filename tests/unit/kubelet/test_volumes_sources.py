"""Volume payloads: configMap/secret items and modes, downward API values, hostPath types,
subPath resolution, token refresh at 80% of the lifetime."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest

from kybernetes.kubelet.volumes import configmap, hostpath, projected, secret
from kybernetes.kubelet.volumes.atomic_writer import FileProjection
from kybernetes.kubelet.volumes.base import VolumeContext, VolumeError
from kybernetes.kubelet.volumes.emptydir import memory_size
from kybernetes.kubelet.volumes.manager import ContainerConfigError, VolumeManager
from kybernetes.kubelet.volumes.projection import downward_payload, field_value, resource_value
from kybernetes.kubelet.volumes.tokens import TokenManager

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": "2", "a": 'x"y'},
                    "annotations": {}},
       "spec": {"serviceAccountName": "sa",
                "containers": [{"name": "c", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"},
                                                            "requests": {"memory": "32Mi"}}},
                               {"name": "d"}]}}


class FakeClient:
    def __init__(self, objs=None):
        self.objs = objs or {}
        self.posts = []
        self.now = 0

    def resource(self, group, version, resource, namespaced=True):
        outer = self

        class H:
            async def get(self, name, ns):
                from kybernetes.client import NotFound
                try:
                    return outer.objs[(resource, ns, name)]
                except KeyError:
                    raise NotFound.__new__(NotFound) from None
        return H()

    async def request(self, method, path, body):
        self.posts.append((path, body))
        exp = self.clock() + body["spec"]["expirationSeconds"]
        import datetime
        ts = datetime.datetime.fromtimestamp(exp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"status": {"token": f"tok{len(self.posts)}", "expirationTimestamp": ts}}

    def clock(self):
        return self.now


def ctx(tmp_path, objs=None, pod=POD):
    return VolumeContext(FakeClient(objs), pod, tmp_path / "pod", node_allocatable=lambda: {"cpu": "2", "memory": "1Gi"})


def run(coro):
    return asyncio.run(coro)


def test_configmap_all_keys_and_binary(tmp_path):
    cm = {"data": {"k1": "v1"}, "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}
    c = ctx(tmp_path, {("configmaps", "ns", "cm"): cm})
    out = run(configmap.payload(c, {"name": "cm"}, 0o644))
    assert out == {"k1": FileProjection(b"v1", 0o644), "bin": FileProjection(b"\x00\x01", 0o644)}


def test_configmap_items_modes_and_missing(tmp_path):
    c = ctx(tmp_path, {("configmaps", "ns", "cm"): {"data": {"k1": "v1", "k2": "v2"}}})
    out = run(configmap.payload(c, {"name": "cm", "items": [{"key": "k1", "path": "sub/one", "mode": 0o600}]}, 0o644))
    assert out == {"sub/one": FileProjection(b"v1", 0o600)}
    with pytest.raises(VolumeError, match="configmap references non-existent config key: nope"):
        run(configmap.payload(c, {"name": "cm", "items": [{"key": "nope", "path": "x"}]}, 0o644))
    assert run(configmap.payload(c, {"name": "cm", "optional": True, "items": [{"key": "nope", "path": "x"}]}, 0o644)) == {}
    with pytest.raises(VolumeError, match='configmap "other" not found'):
        run(configmap.payload(c, {"name": "other"}, 0o644))
    assert run(configmap.payload(c, {"name": "other", "optional": True}, 0o644)) == {}


def test_secret_decodes_and_reports_missing(tmp_path):
    c = ctx(tmp_path, {("secrets", "ns", "s"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}}})
    assert run(secret.payload(c, {}, "s", 0o400)) == {"pw": FileProjection(b"hunter2", 0o400)}
    with pytest.raises(VolumeError, match='secret "t" not found'):
        run(secret.payload(c, {}, "t", 0o400))


def test_downward_fields():
    assert field_value(POD, "metadata.name") == "p"
    assert field_value(POD, "metadata.labels") == 'a="x\\"y"\nb="2"'
    assert field_value(POD, "metadata.labels['b']") == "2"
    with pytest.raises(VolumeError):
        field_value(POD, "status.podIP")


def test_downward_resources():
    alloc = {"cpu": "2", "memory": "1Gi"}
    assert resource_value(POD, {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}, alloc) == "250"
    assert resource_value(POD, {"containerName": "c", "resource": "limits.cpu"}, alloc) == "1"  # rounded up
    assert resource_value(POD, {"containerName": "c", "resource": "requests.memory", "divisor": "1Mi"}, alloc) == "32"
    # no limit: node allocatable
    assert resource_value(POD, {"containerName": "d", "resource": "limits.memory"}, alloc) == str(1 << 30)
    out = downward_payload(POD, [{"path": "n", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o444}],
                           0o644, alloc)
    assert out == {"n": FileProjection(b"ns", 0o444)}


def test_hostpath_types(tmp_path):
    d = tmp_path / "made"
    hostpath.check_type(str(d), "DirectoryOrCreate")
    assert d.is_dir()
    f = tmp_path / "f"
    hostpath.check_type(str(f), "FileOrCreate")
    assert f.is_file()
    with pytest.raises(VolumeError, match=f"hostPath type check failed: {f} is not a directory"):
        hostpath.check_type(str(f), "Directory")
    with pytest.raises(VolumeError, match="is not a file"):
        hostpath.check_type(str(d), "File")
    with pytest.raises(VolumeError, match="is not a file"):
        hostpath.check_type(str(tmp_path / "absent"), "File")
    with pytest.raises(VolumeError, match="is not a socket file"):
        hostpath.check_type(str(f), "Socket")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(tmp_path / "sock"))
        hostpath.check_type(str(tmp_path / "sock"), "Socket")
    finally:
        s.close()
    with pytest.raises(VolumeError, match="Bogus is an invalid volume type"):
        hostpath.check_type(str(f), "Bogus")


def test_memory_size():
    assert memory_size(POD, "16Mi") == 16 << 20
    assert memory_size(POD, None) is None  # container d has no limit
    one = {"spec": {"containers": [{"resources": {"limits": {"memory": "64Mi"}}}]}}
    assert memory_size(one, "1Gi") == 64 << 20
    assert memory_size(one, None) == 64 << 20
    assert memory_size(POD, None, "1Gi") == 1 << 30       # no pod limit: node allocatable
    assert memory_size(POD, "2Gi", "1Gi") == 1 << 30


def test_sub_path(tmp_path):
    vm = VolumeManager(None, tmp_path)
    vol = tmp_path / "vol"
    vol.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink("../outside", vol / "escape")
    assert VolumeManager._sub_path(vol, "a/b") == str(vol / "a" / "b")
    assert (vol / "a" / "b").is_dir()
    for bad in ("../x", "/etc", "escape"):
        with pytest.raises(ContainerConfigError):
            VolumeManager._sub_path(vol, bad)
    from kybernetes.kubelet.volumes.base import MountedVolume
    c = {"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/m", "subPath": "a"},
                                       {"name": "ro", "mountPath": "/r"}]}
    mounts = vm.container_mounts(POD, c, {"v": MountedVolume(vol), "ro": MountedVolume(vol, read_only=True)})
    assert [(m.container_path, m.host_path, m.readonly) for m in mounts] == [("/m", str(vol / "a"), False),
                                                                             ("/r", str(vol), True)]
    with pytest.raises(ContainerConfigError):
        vm.container_mounts(POD, {"name": "c", "volumeMounts": [{"name": "zz", "mountPath": "/z"}]}, {})


def test_token_refreshes_at_80_percent():
    cl = FakeClient()
    cl.now = 1_000_000.0
    tm = TokenManager(cl, clock=cl.clock)
    t1 = run(tm.token(POD, "sa", expiration_seconds=1000))
    assert t1 == "tok1"
    path, body = cl.posts[0]
    assert path == "/api/v1/namespaces/ns/serviceaccounts/sa/token"
    assert body["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}
    cl.now += 700  # 70%: cached (jitter is at most 10 s)
    assert run(tm.token(POD, "sa", expiration_seconds=1000)) == "tok1"
    cl.now += 111  # past 80% + max jitter
    assert run(tm.token(POD, "sa", expiration_seconds=1000)) == "tok2"
    tm.forget_pod("u1")
    assert tm.cache == {}


def test_projected_merges_sources(tmp_path):
    cm = {"data": {"ca.crt": "PEM"}}
    c = ctx(tmp_path, {("configmaps", "ns", "kube-root-ca.crt"): cm})
    c.tokens = TokenManager(c.client, clock=c.client.clock)
    vol = {"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    out = run(projected.payload(c, vol))
    assert out == {"token": FileProjection(b"tok1", 0o644), "ca.crt": FileProjection(b"PEM", 0o644),
                   "namespace": FileProjection(b"ns", 0o644)}


async def test_object_cache_coalesces_and_expires():
    from kybernetes.kubelet.volumes.base import ObjectCache
    gets = []

    class Slow(FakeClient):
        def resource(self, group, version, resource, namespaced=True):
            inner = super().resource(group, version, resource, namespaced)

            class H:
                async def get(self, name, ns):
                    gets.append(name)
                    await asyncio.sleep(0)
                    return await inner.get(name, ns)
            return H()
    cl = Slow({("configmaps", "ns", "cm"): {"data": {"a": "1"}}})
    now = [0.0]
    cache = ObjectCache(cl, ttl=1.0, clock=lambda: now[0])
    got = await asyncio.gather(*(cache.get("configmaps", "ns", "cm") for _ in range(20)))
    assert all(g == {"data": {"a": "1"}} for g in got) and gets == ["cm"]
    assert await cache.get("configmaps", "ns", "missing") is None
    now[0] = 0.5
    await cache.get("configmaps", "ns", "cm")
    assert gets == ["cm", "missing"]
    now[0] = 1.5
    cl.objs[("configmaps", "ns", "cm")] = {"data": {"a": "2"}}
    assert await cache.get("configmaps", "ns", "cm") == {"data": {"a": "2"}}
    assert gets == ["cm", "missing", "cm"]
