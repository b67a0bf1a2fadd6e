"""RuntimeClass admission: missing class, overhead, scheduling merge."""

from __future__ import annotations

import pytest
from admission_helpers import pod, put, req

from kybernetes.admission.runtimeclass import RuntimeClass, merge_tolerations
from kybernetes.apiserver.errors import APIError

RC = ("node.k8s.io", "v1", "runtimeclasses")


def rc(name: str, **extra: object) -> dict:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
            "handler": "runc", **extra}


async def admit_and_validate(objects, p: dict) -> dict:
    plugin = RuntimeClass(objects)
    await plugin.admit("CREATE", req(), p, None)
    await plugin.validate("CREATE", req(), p, None)
    return p


async def test_missing_class_rejected_with_upstream_message(objects):
    with pytest.raises(APIError) as e:
        await admit_and_validate(objects, pod("x", runtimeClassName="nope"))
    assert e.value.code == 403
    assert str(e.value) == 'pods "x" is forbidden: pod rejected: RuntimeClass "nope" not found'


async def test_pods_without_class_untouched_and_other_ops_ignored(objects):
    p = await admit_and_validate(objects, pod())
    assert "overhead" not in p["spec"] and "nodeSelector" not in p["spec"]
    # updates are not checked (runtimeClassName is immutable on pods anyway)
    await RuntimeClass(objects).admit("UPDATE", req(), pod(runtimeClassName="nope"), pod())
    with pytest.raises(APIError) as e:
        await admit_and_validate(objects, pod("o", overhead={"cpu": "1"}))
    assert str(e.value) == ('pods "o" is forbidden: pod rejected: Pod Overhead set without corresponding '
                            "RuntimeClass defined Overhead")


async def test_overhead_copied_and_mismatch_rejected(objects):
    await put(objects, *RC, rc("kata", overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}}))
    p = await admit_and_validate(objects, pod(runtimeClassName="kata"))
    assert p["spec"]["overhead"] == {"cpu": "250m", "memory": "120Mi"}
    # the same overhead in another spelling is fine
    same = await admit_and_validate(objects, pod(runtimeClassName="kata", overhead={"cpu": "0.25", "memory": "120Mi"}))
    assert same["spec"]["overhead"] == {"cpu": "250m", "memory": "120Mi"}
    with pytest.raises(APIError) as e:
        await admit_and_validate(objects, pod("m", runtimeClassName="kata", overhead={"cpu": "1"}))
    assert str(e.value) == ('pods "m" is forbidden: pod rejected: Pod\'s Overhead doesn\'t match RuntimeClass\'s '
                            "defined Overhead")
    # a later mutation (e.g. a webhook) changing the overhead is caught by validate
    changed = pod("w", runtimeClassName="kata")
    await RuntimeClass(objects).admit("CREATE", req(), changed, None)
    changed["spec"]["overhead"]["cpu"] = "2"
    with pytest.raises(APIError):
        await RuntimeClass(objects).validate("CREATE", req(), changed, None)


async def test_class_without_overhead_keeps_pod_plain(objects):
    await put(objects, *RC, rc("plain"))
    p = await admit_and_validate(objects, pod(runtimeClassName="plain"))
    assert "overhead" not in p["spec"]


async def test_scheduling_merged_and_conflict_rejected(objects):
    await put(objects, *RC, rc("sandboxed", scheduling={
        "nodeSelector": {"sandbox": "yes"},
        "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}))
    p = await admit_and_validate(objects, pod(runtimeClassName="sandboxed", nodeSelector={"zone": "a"},
                                              tolerations=[{"key": "other", "operator": "Exists"}]))
    assert p["spec"]["nodeSelector"] == {"zone": "a", "sandbox": "yes"}
    assert p["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"},
                                        {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]
    q = await admit_and_validate(objects, pod(runtimeClassName="sandboxed"))
    assert q["spec"]["nodeSelector"] == {"sandbox": "yes"}
    with pytest.raises(APIError) as e:
        await admit_and_validate(objects, pod("c", runtimeClassName="sandboxed", nodeSelector={"sandbox": "no"}))
    assert str(e.value) == ('pods "c" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; '
                            "pod.spec.nodeSelector[sandbox] = no")


def test_merge_tolerations_drops_covered_ones() -> None:
    a = {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}
    wide = {"key": "k", "operator": "Exists"}
    everything = {"operator": "Exists"}
    assert merge_tolerations([a], [wide]) == [wide]
    assert merge_tolerations([a, a], []) == [a]
    assert merge_tolerations([a], [everything]) == [everything]
    ns = {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
    longer = {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    # a toleration for 60s is not covered by one for 10s; the reverse holds
    assert merge_tolerations([longer], [ns]) == [longer]
    assert merge_tolerations([ns], [longer]) == [longer]
    assert merge_tolerations([a], [{"key": "x", "operator": "Exists"}]) == [a, {"key": "x", "operator": "Exists"}]
