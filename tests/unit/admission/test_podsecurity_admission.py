"""PodSecurity admission: namespace labels choose enforce/audit/warn; pods are refused,
workloads only warned; namespace label changes are validated and warn about pods."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from admission_helpers import put, req

from kybernetes.admission.podsecurity import Config, LevelVersion, Policy, PodSecurity, policy_from_labels
from kybernetes.apiserver import errors

L = "pod-security.kubernetes.io/"


def ns(name="ns1", **labels):
    return {"metadata": {"name": name, "labels": {L + k.replace("_", "-"): v for k, v in labels.items()}}}


def pod(name="p", **sc):
    return {"metadata": {"name": name, "namespace": "ns1"},
            "spec": {"containers": [{"name": "c", "image": "i", **({"securityContext": sc} if sc else {})}]}}


def rq(resource="pods", group="", version="v1", user="alice", **kw):
    r = req(resource, group=group, version=version, **kw)
    r.http = {"user": SimpleNamespace(name=user)}
    r.warnings = []
    return r


def test_labels_to_policy():
    p, errs = policy_from_labels({L + "enforce": "baseline", L + "enforce-version": "v1.30"}, Policy())
    assert errs == [] and str(p.enforce) == "baseline:v1.30"
    assert str(p.warn) == "baseline:v1.30" and str(p.audit) == "privileged:latest"  # warn follows enforce
    p, errs = policy_from_labels({L + "enforce": "baseline", L + "warn": "restricted"}, Policy())
    assert str(p.warn) == "restricted:latest"
    p, errs = policy_from_labels({L + "enforce": "strict", L + "audit-version": "1.2"}, Policy())
    assert str(p.enforce) == "restricted:latest"  # fail closed
    assert [(c.field, c.message) for c in errs] == [
        (f"metadata.labels[{L}enforce]", 'Invalid value: "strict": must be one of privileged, baseline, restricted'),
        (f"metadata.labels[{L}audit-version]", 'Invalid value: "1.2": must be "latest" or "v1.x"')]


async def test_enforce_refuses_pod_with_upstream_message(objects):
    await put(objects, "", "v1", "namespaces", ns(enforce="restricted"))
    ps, r = PodSecurity(objects), rq()
    with pytest.raises(errors.APIError) as e:
        await ps.validate("CREATE", r, pod(), None)
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    assert e.value.message.startswith(
        'pods "p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "c" must set securityContext.allowPrivilegeEscalation=false), ')
    assert e.value.details == {"name": "p", "kind": "pods"}
    assert r.http["audit_annotations"][L + "enforce-policy"] == "restricted:latest"
    assert r.warnings == []  # no warnings on a request that is refused


async def test_warn_and_audit_do_not_refuse(objects):
    await put(objects, "", "v1", "namespaces", ns(warn="baseline", audit="baseline"))
    ps, r = PodSecurity(objects), rq()
    await ps.validate("CREATE", r, pod(privileged=True), None)
    assert r.warnings == ['would violate PodSecurity "baseline:latest": privileged (container "c" must not set '
                          'securityContext.privileged=true)']
    ann = r.http["audit_annotations"]
    assert ann[L + "audit-violations"] == ('would violate PodSecurity "baseline:latest": privileged (container "c" '
                                           'must not set securityContext.privileged=true)')
    assert ann[L + "enforce-policy"] == "privileged:latest"


async def test_privileged_namespace_and_exemptions(objects):
    await put(objects, "", "v1", "namespaces", ns())
    r = rq()
    await PodSecurity(objects).validate("CREATE", r, pod(privileged=True), None)
    assert r.warnings == [] and r.http["audit_annotations"] == {L + "enforce-policy": "privileged:latest"}
    await put(objects, "", "v1", "namespaces", ns("ns2", enforce="restricted"))
    cfg = Config(exempt_usernames=frozenset({"ci"}), exempt_namespaces=frozenset({"ns2"}),
                 exempt_runtime_classes=frozenset({"kata"}))
    r = rq(ns="ns2")
    await PodSecurity(objects, cfg).validate("CREATE", r, pod(privileged=True), None)
    assert r.http["audit_annotations"] == {L + "exempt": "namespace"}
    await put(objects, "", "v1", "namespaces", ns("ns3", enforce="restricted"))
    r = rq(ns="ns3", user="ci")
    await PodSecurity(objects, cfg).validate("CREATE", r, pod(privileged=True), None)
    assert r.http["audit_annotations"] == {L + "exempt": "user"}
    r, p = rq(ns="ns3"), pod(privileged=True)
    p["spec"]["runtimeClassName"] = "kata"
    await PodSecurity(objects, cfg).validate("CREATE", r, p, None)
    assert r.http["audit_annotations"] == {L + "exempt": "runtimeClass"}


async def test_insignificant_pod_updates_are_allowed(objects):
    await put(objects, "", "v1", "namespaces", ns(enforce="baseline"))
    ps, old = PodSecurity(objects), pod(privileged=True)
    new = pod(privileged=True)
    new["metadata"]["labels"] = {"a": "b"}
    await ps.validate("UPDATE", rq(), new, old)  # a label change on an existing pod
    new["spec"]["containers"][0]["image"] = "j"
    with pytest.raises(errors.APIError):
        await ps.validate("UPDATE", rq(), new, old)
    await ps.validate("UPDATE", rq(sub="status"), new, old)  # status never re-checked


async def test_workloads_warn_but_are_never_refused(objects):
    await put(objects, "", "v1", "namespaces", ns(enforce="restricted"))
    dep = {"metadata": {"name": "d", "namespace": "ns1"},
           "spec": {"template": {"metadata": {}, "spec": pod()["spec"]}}}
    r = rq("deployments", group="apps")
    await PodSecurity(objects).validate("CREATE", r, dep, None)
    assert len(r.warnings) == 1 and r.warnings[0].startswith('would violate PodSecurity "restricted:latest": ')
    assert L + "enforce-policy" not in r.http.get("audit_annotations", {})
    cj = {"metadata": {"name": "j", "namespace": "ns1"},
          "spec": {"jobTemplate": {"spec": {"template": {"spec": pod()["spec"]}}}}}
    r = rq("cronjobs", group="batch")
    await PodSecurity(objects).validate("CREATE", r, cj, None)
    assert len(r.warnings) == 1


async def test_namespace_labels_validated_and_existing_pods_reported(objects):
    ps = PodSecurity(objects)
    with pytest.raises(errors.APIError) as e:
        await ps.validate("CREATE", rq("namespaces", ns=""), ns("bad", enforce="nope"), None)
    assert e.value.code == 422 and e.value.message == (
        f'Namespace "bad" is invalid: metadata.labels[{L}enforce]: Invalid value: "nope": must be one of '
        'privileged, baseline, restricted')
    await put(objects, "", "v1", "namespaces", ns())
    for name, sc in (("b", {"privileged": True}), ("a", {"privileged": True}), ("c", {})):
        p = pod(name, **sc)
        await put(objects, "", "v1", "pods", p)
    r = rq("namespaces", ns="")
    await ps.validate("UPDATE", r, ns(enforce="baseline"), ns())
    assert r.warnings == ['existing pods in namespace "ns1" violate the new PodSecurity enforce level "baseline:latest"',
                          "a (and 1 other pod): privileged"]
    r = rq("namespaces", ns="")
    await ps.validate("UPDATE", r, ns(enforce="baseline"), ns(enforce="restricted"))  # loosening: no check
    assert r.warnings == []
    assert LevelVersion("baseline", 30).__str__() == "baseline:v1.30"
