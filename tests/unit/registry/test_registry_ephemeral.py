"""pods/ephemeralcontainers: what the subresource keeps from a write and how it validates
(upstream podEphemeralContainersStrategy and ValidatePodEphemeralContainersUpdate)."""

from __future__ import annotations

import copy

from kybernetes.registry.core.pods import PodStrategy

S = PodStrategy()


def pod(*ephemeral: dict) -> dict:
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
         "spec": {"containers": [{"name": "main", "image": "busybox"}],
                  "initContainers": [{"name": "setup", "image": "busybox"}],
                  "volumes": [{"name": "data", "emptyDir": {}}],
                  "restartPolicy": "Always", "nodeName": "n1"},
         "status": {"phase": "Running"}}
    if ephemeral:
        p["spec"]["ephemeralContainers"] = list(ephemeral)
    return p


def dbg(name: str = "dbg", **kw) -> dict:
    return {"name": name, "image": "busybox", **kw}


def messages(causes) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in causes]


def test_subresource_is_served() -> None:
    assert "ephemeralcontainers" in S.subresources
    assert "ephemeralcontainers" not in S.future_subresources


def test_create_with_ephemeral_containers_is_forbidden() -> None:
    assert messages(S.validate(pod(dbg()))) == [("spec.ephemeralContainers", "Forbidden: cannot be set on create")]
    assert S.validate(pod()) == []


def test_prepare_keeps_only_ephemeral_containers() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx"
    new["spec"]["ephemeralContainers"] = [dbg(targetContainerName="main")]
    new["status"] = {"phase": "Failed"}
    S.prepare_for_ephemeral_update(new, old)
    assert new["spec"]["containers"] == old["spec"]["containers"]
    assert new["status"] == {"phase": "Running"}
    added = new["spec"]["ephemeralContainers"][0]
    # defaulted as a container on decode
    assert added["terminationMessagePolicy"] == "File" and added["imagePullPolicy"] == "Always"
    assert S.validate_ephemeral_update(new, old) == []


def test_existing_may_not_be_changed_or_removed() -> None:
    old = pod(dbg("a"), dbg("b"))
    new = pod(dbg("b", image="nginx"), dbg("c"))
    got = messages(S.validate_ephemeral_update(new, old))
    assert got[0] == ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "a" may not be removed\n')
    field, msg = got[1]
    assert field == "spec.ephemeralContainers"
    assert msg.startswith('Forbidden: existing ephemeral containers "b" may not be changed\n')
    assert "image" in msg
    assert len(got) == 2
    # order does not matter: patches may reorder the list
    assert S.validate_ephemeral_update(pod(dbg("b"), dbg("a"), dbg("c")), old) == []


def test_names_unique_target_known_and_fields_forbidden() -> None:
    new = pod(dbg("main"), dbg("x", targetContainerName="nope"),
              dbg("y", ports=[{"containerPort": 80, "protocol": "TCP"}], resources={"limits": {"cpu": "1"}},
                  readinessProbe={"exec": {"command": ["true"]}}, lifecycle={"preStop": {"exec": {"command": ["a"]}}},
                  volumeMounts=[{"name": "data", "mountPath": "/d", "subPath": "s"}]),
              dbg("setup"))
    got = messages(S.validate_ephemeral_update(new, pod()))
    assert got == [
        ("spec.ephemeralContainers[0].name", 'Duplicate value: "main"'),
        ("spec.ephemeralContainers[1].targetContainerName", 'Not found: "nope"'),
        ("spec.ephemeralContainers[2].ports", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[2].resources", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[2].readinessProbe", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[2].lifecycle", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[2].volumeMounts[0].subPath", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[3].name", 'Duplicate value: "setup"'),
    ]
    # an init container is a valid target; an empty resources struct is no resources
    assert S.validate_ephemeral_update(pod(dbg(targetContainerName="setup", resources={})), pod()) == []


def test_mirror_pods_take_none() -> None:
    old = pod()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [dbg()]
    assert messages(S.validate_ephemeral_update(new, old)) == [
        ("[]", "Forbidden: static pods do not support ephemeral containers")]


def test_plain_pod_update_may_not_add_them() -> None:
    old = pod()
    new = pod(dbg())
    got = messages(S.validate_update(new, old))
    assert got and got[-1][0] == "spec" and "pod updates may not change fields" in got[-1][1]
