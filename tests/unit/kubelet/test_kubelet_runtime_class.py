"""The kubelet's RuntimeClass lookup: class name -> CRI runtime handler."""

from __future__ import annotations

import pytest

from kybernetes.client import Forbidden, NotFound
from kybernetes.kubelet.runtime_class import RuntimeClassError, runtime_handler


class FakeHandle:
    def __init__(self, classes: dict, error: Exception | None = None) -> None:
        self.classes, self.error, self.asked = classes, error, []

    async def get(self, name: str) -> dict:
        self.asked.append(name)
        if self.error is not None:
            raise self.error
        if name not in self.classes:
            raise NotFound({"code": 404, "reason": "NotFound", "message": "nope"})
        return self.classes[name]


class FakeClient:
    def __init__(self, handle: FakeHandle) -> None:
        self.handle, self.resources = handle, []

    def resource(self, group: str, version: str, resource: str, **kw: object) -> FakeHandle:
        self.resources.append((group, version, resource))
        return self.handle


def pod(rc: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c"}]}
    if rc is not None:
        spec["runtimeClassName"] = rc
    return {"metadata": {"name": "p", "namespace": "d"}, "spec": spec}


async def test_no_class_means_default_handler_without_asking() -> None:
    client = FakeClient(FakeHandle({}))
    assert await runtime_handler(client, pod()) == ""
    assert await runtime_handler(client, pod("")) == ""
    assert client.resources == []


async def test_class_resolves_to_its_handler() -> None:
    client = FakeClient(FakeHandle({"fast": {"metadata": {"name": "fast"}, "handler": "runc"}}))
    assert await runtime_handler(client, pod("fast")) == "runc"
    assert client.resources == [("node.k8s.io", "v1", "runtimeclasses")]


async def test_missing_class_and_other_errors() -> None:
    with pytest.raises(RuntimeClassError) as e:
        await runtime_handler(FakeClient(FakeHandle({})), pod("gone"))
    assert str(e.value) == 'runtimeclass.node.k8s.io "gone" not found'
    denied = Forbidden({"code": 403, "reason": "Forbidden", "message": "no"})
    with pytest.raises(RuntimeClassError) as e:
        await runtime_handler(FakeClient(FakeHandle({}, denied)), pod("x"))
    assert str(e.value).startswith("failed to lookup RuntimeClass x: ")


async def test_node_authorizer_lets_a_node_read_runtimeclasses() -> None:
    from kybernetes.auth.authorizer import Attributes, Decision, UserInfo
    from kybernetes.auth.node_authorizer import Graph, NodeAuthorizer

    node = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
    authz = NodeAuthorizer(Graph())

    def attrs(verb: str, name: str = "") -> Attributes:
        return Attributes(user=node, verb=verb, namespace="", api_group="node.k8s.io", resource="runtimeclasses",
                          subresource="", name=name)
    for verb, name in (("get", "kata"), ("list", ""), ("watch", "")):
        assert (await authz.authorize(attrs(verb, name)))[0] is Decision.ALLOW
    assert (await authz.authorize(attrs("create")))[0] is not Decision.ALLOW
