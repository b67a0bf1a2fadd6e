"""Priority, DefaultTolerationSeconds and DefaultStorageClass admission."""

from __future__ import annotations


import pytest

from kybernetes.admission import lookup
from kybernetes.apiserver.errors import APIError


from admission_helpers import pod, put, req  # noqa: E402


from kybernetes.admission.defaultstorageclass import DefaultStorageClass  # noqa: E402
from kybernetes.admission.defaulttolerationseconds import DefaultTolerationSeconds  # noqa: E402
from kybernetes.admission.priority import Priority, bootstrap_system_classes  # noqa: E402

PC = ("scheduling.k8s.io", "v1", "priorityclasses")


def pc(name, value, default=False, policy="PreemptLowerPriority"):
    return {"metadata": {"name": name}, "value": value, "globalDefault": default, "preemptionPolicy": policy}


async def test_priority_from_class_and_unknown(objects):
    await put(objects, *PC, pc("high", 1000, policy="Never"))
    p = pod(priorityClassName="high")
    await Priority(objects).admit("CREATE", req(), p, None)
    assert p["spec"]["priority"] == 1000 and p["spec"]["preemptionPolicy"] == "Never"
    with pytest.raises(APIError) as e:
        await Priority(objects).admit("CREATE", req(), pod("x", priorityClassName="nope"), None)
    assert e.value.code == 403
    assert str(e.value) == 'pods "x" is forbidden: no PriorityClass with name nope was found'
    with pytest.raises(APIError) as e:
        await Priority(objects).admit("CREATE", req(), pod("x", priorityClassName="high", priority=5), None)
    assert str(e.value) == ('pods "x" is forbidden: the integer value of priority (5) must not be provided in pod '
                            "spec; priority admission controller computed 1000 from the given PriorityClass name")


async def test_no_class_and_global_default(objects):
    p = pod()
    await Priority(objects).admit("CREATE", req(), p, None)
    assert p["spec"]["priority"] == 0 and p["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
    await put(objects, *PC, pc("d2", 20, default=True))
    await put(objects, *PC, pc("d1", 10, default=True, policy="Never"))
    # pod defaulting already wrote the no-class values
    q = pod(priority=0, preemptionPolicy="PreemptLowerPriority")
    await Priority(objects).admit("CREATE", req(), q, None)
    assert (q["spec"]["priorityClassName"], q["spec"]["priority"], q["spec"]["preemptionPolicy"]) == ("d1", 10, "Never")
    # updates keep the old values
    u = pod()
    await Priority(objects).admit("UPDATE", req(), u, q)
    assert u["spec"]["priority"] == 10 and u["spec"]["preemptionPolicy"] == "Never"


async def test_only_one_global_default(objects):
    await put(objects, *PC, pc("d1", 10, default=True))
    r = req("priorityclasses", ns="", group="scheduling.k8s.io")
    with pytest.raises(APIError) as e:
        await Priority(objects).validate("CREATE", r, pc("d2", 5, default=True), None)
    assert str(e.value) == ('priorityclasses.scheduling.k8s.io "d2" is forbidden: '
                            "PriorityClass d1 is already marked as default. Only one default can exist")
    await Priority(objects).validate("UPDATE", r, pc("d1", 10, default=True), pc("d1", 10, default=True))
    await Priority(objects).validate("CREATE", r, pc("d3", 5), None)


async def test_system_classes_bootstrap(objects):
    await bootstrap_system_classes(objects)
    await bootstrap_system_classes(objects)  # idempotent
    p = pod(priorityClassName="system-node-critical")
    await Priority(objects).admit("CREATE", req(), p, None)
    assert p["spec"]["priority"] == 2000001000
    got = await lookup.get_object(objects, *PC, "", "system-cluster-critical")
    assert got["value"] == 2000000000 and got["metadata"]["uid"]


async def test_default_toleration_seconds():
    p = pod(tolerations=[{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": 10}])
    await DefaultTolerationSeconds().admit("CREATE", req(), p, None)
    assert p["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    everything = pod(tolerations=[{"operator": "Exists"}])
    await DefaultTolerationSeconds().admit("CREATE", req(), everything, None)
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]
    plain = pod()
    await DefaultTolerationSeconds().admit("CREATE", req(), plain, None)
    assert [t["key"] for t in plain["spec"]["tolerations"]] == ["node.kubernetes.io/not-ready",
                                                                "node.kubernetes.io/unreachable"]


async def test_default_storage_class(objects):
    SC = ("storage.k8s.io", "v1", "storageclasses")
    ann = {"storageclass.kubernetes.io/is-default-class": "true"}
    await put(objects, *SC, {"metadata": {"name": "old", "annotations": ann,
                                          "creationTimestamp": "2024-01-01T00:00:00Z"}, "provisioner": "x"})
    await put(objects, *SC, {"metadata": {"name": "new", "annotations": ann,
                                          "creationTimestamp": "2025-01-01T00:00:00Z"}, "provisioner": "x"})
    await put(objects, *SC, {"metadata": {"name": "plain"}, "provisioner": "x"})
    r = req("persistentvolumeclaims")
    claim = {"metadata": {"name": "c", "namespace": "ns1"}, "spec": {}}
    await DefaultStorageClass(objects).admit("CREATE", r, claim, None)
    assert claim["spec"]["storageClassName"] == "new"
    explicit = {"metadata": {"name": "c"}, "spec": {"storageClassName": ""}}
    await DefaultStorageClass(objects).admit("CREATE", r, explicit, None)
    assert explicit["spec"]["storageClassName"] == ""
    beta = {"metadata": {"name": "c", "annotations": {"volume.beta.kubernetes.io/storage-class": "plain"}}, "spec": {}}
    await DefaultStorageClass(objects).admit("CREATE", r, beta, None)
    assert "storageClassName" not in beta["spec"]
    upd = {"metadata": {"name": "c"}, "spec": {}}
    await DefaultStorageClass(objects).admit("UPDATE", r, upd, {})
    assert "storageClassName" not in upd["spec"]
