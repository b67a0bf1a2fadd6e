"""Pod and container securityContext as the CRI Linux security contexts."""

from __future__ import annotations

from kybernetes.cri import pb
from kybernetes.kubelet.security_context import container_security_context, sandbox_identity


def test_container_overrides_pod_and_fs_group_joins_supplemental_groups():
    pod = {"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
                                        "supplementalGroups": [4000, 5000]}}}
    c = {"name": "a", "securityContext": {"runAsUser": 1001, "readOnlyRootFilesystem": True,
                                          "allowPrivilegeEscalation": False,
                                          "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
    sc = container_security_context(pod, c)
    assert sc.run_as_user.value == 1001 and sc.run_as_group.value == 3000
    assert list(sc.supplemental_groups) == [4000, 5000, 2000]
    assert sc.readonly_rootfs and sc.no_new_privs
    assert list(sc.capabilities.drop_capabilities) == ["ALL"]
    assert list(sc.capabilities.add_capabilities) == ["NET_BIND_SERVICE"]
    assert sc.supplemental_groups_policy == pb.Merge
    sb = pb.LinuxSandboxSecurityContext(**sandbox_identity(pod))
    assert sb.run_as_user.value == 1000 and list(sb.supplemental_groups) == [4000, 5000, 2000]


def test_nothing_set_leaves_the_runtime_defaults():
    sc = container_security_context({"spec": {}}, {"name": "a"})
    assert not sc.HasField("run_as_user") and not sc.HasField("run_as_group")
    assert not sc.HasField("capabilities")
    assert list(sc.supplemental_groups) == [] and not sc.no_new_privs and not sc.readonly_rootfs
    assert sandbox_identity({"spec": {}}) == {"supplemental_groups": [], "supplemental_groups_policy": pb.Merge}
    strict = {"spec": {"securityContext": {"supplementalGroupsPolicy": "Strict"}}}
    assert container_security_context(strict, {}).supplemental_groups_policy == pb.Strict


def test_privileged_container_makes_its_sandbox_privileged():
    pod = {"spec": {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
                    "containers": [{"name": "a"}, {"name": "b", "securityContext": {"privileged": False}}]}}
    assert container_security_context(pod, pod["spec"]["initContainers"][0]).privileged
    assert not container_security_context(pod, pod["spec"]["containers"][1]).privileged
    assert pb.LinuxSandboxSecurityContext(**sandbox_identity(pod)).privileged
    pod["spec"]["initContainers"][0]["securityContext"]["privileged"] = False
    assert "privileged" not in sandbox_identity(pod)


def test_namespace_options_per_container_unless_shared():
    from kybernetes.cri import pb
    from kybernetes.kubelet.security_context import container_security_context, namespace_options

    ns = namespace_options({"spec": {}})
    assert (ns.network, ns.pid, ns.ipc) == (pb.POD, pb.CONTAINER, pb.POD)
    assert namespace_options({"spec": {"shareProcessNamespace": True}}).pid == pb.POD
    host = namespace_options({"spec": {"hostNetwork": True, "hostPID": True, "hostIPC": True}})
    assert (host.network, host.pid, host.ipc) == (pb.NODE, pb.NODE, pb.NODE)
    # each container carries them (CRI's zero value would put every container in the pod's PID namespace)
    sc = container_security_context({"spec": {}}, {"name": "c"})
    assert sc.namespace_options.pid == pb.CONTAINER
