"""The kubelet's sysctl admission (safe set, --allowed-unsafe-sysctls patterns, host
namespaces), the API's sysctl name validation, and the active deadline arithmetic."""

from __future__ import annotations

import datetime

import pytest

from kybernetes.kubelet import active_deadline, sysctls
from kybernetes.registry.core.podspec import validate_pod_spec, validate_pod_spec_update


def pod(*names, **spec):
    return {"spec": {"securityContext": {"sysctls": [{"name": n, "value": "1"} for n in names]}, **spec}}


def test_safe_sysctls_are_admitted_and_others_rejected():
    a = sysctls.Allowlist()
    assert a.admit(pod(*sysctls.SAFE_SYSCTLS)) is None
    assert a.admit(pod("kernel.shm_rmid_forced", "net.core.somaxconn")) == \
        ("SysctlForbidden", 'forbidden sysctl: "net.core.somaxconn" not allowlisted')
    assert a.admit({"spec": {}}) is None


def test_unsafe_patterns_and_slash_names():
    a = sysctls.Allowlist(["kernel.msg*", "net.core.somaxconn"])
    assert a.admit(pod("kernel.msgmax", "net.core.somaxconn", "kernel/shm_rmid_forced")) is None
    assert a.admit(pod("kernel.sem"))[1] == 'forbidden sysctl: "kernel.sem" not allowlisted'
    with pytest.raises(ValueError):
        sysctls.Allowlist(["vm.swappiness"])  # not namespaced: a node-wide setting


def test_host_namespaces_forbid_their_sysctls():
    a = sysctls.Allowlist()
    assert a.admit(pod("net.ipv4.tcp_syncookies", hostNetwork=True))[1] == \
        'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled'
    assert a.admit(pod("kernel.shm_rmid_forced", hostIPC=True))[1] == \
        'forbidden sysctl: "kernel.shm_rmid_forced" not allowed with host ipc enabled'
    assert a.admit(pod("kernel.shm_rmid_forced", hostNetwork=True)) is None


def test_sandbox_sysctls():
    assert sysctls.sandbox_sysctls({"spec": {"securityContext": {"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}]}}}) == {"kernel.shm_rmid_forced": "1"}
    assert sysctls.sandbox_sysctls({"spec": {}}) == {}


def spec_with(*names, **extra):
    return {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}],
            "securityContext": {"sysctls": [{"name": n, "value": "1"} for n in names]}, **extra}


def messages(causes):
    return [(c.field, c.message) for c in causes]


def test_api_validates_sysctl_names():
    assert messages(validate_pod_spec(spec_with("kernel.shm_rmid_forced", "net/ipv4/ip_local_port_range"),
                                      "spec")) == []
    got = messages(validate_pod_spec(spec_with("Kernel.x", "a.b", "a.b", ""), "spec"))
    regex = "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"
    assert got == [
        ("spec.securityContext.sysctls[0].name",
         f'Invalid value: "Kernel.x": must have at most 253 characters and match regex {regex}'),
        ("spec.securityContext.sysctls[2].name", 'Duplicate value: "a.b"'),
        ("spec.securityContext.sysctls[3].name", "Required value"),
    ]
    assert messages(validate_pod_spec(spec_with("net.ipv4.tcp_syncookies", hostNetwork=True), "spec")) == [
        ("spec.securityContext.sysctls[0].name",
         "Invalid value: \"net.ipv4.tcp_syncookies\": may not be specified when 'hostNetwork' is true")]


def test_active_deadline_may_only_shrink():
    base = {"containers": [{"name": "c", "image": "i"}], "activeDeadlineSeconds": 30}
    assert validate_pod_spec_update(dict(base, activeDeadlineSeconds=10), base) == []
    assert validate_pod_spec_update(dict(base), {"containers": base["containers"]}) == []  # newly set
    assert messages(validate_pod_spec_update(dict(base, activeDeadlineSeconds=31), base)) == [
        ("spec.activeDeadlineSeconds", "Invalid value: 31: must be less than or equal to previous value")]
    assert messages(validate_pod_spec_update({"containers": base["containers"]}, base)) == [
        ("spec.activeDeadlineSeconds", 'Invalid value: "null": must not update from a positive integer to nil value')]


def test_remaining_time():
    now = datetime.datetime(2026, 1, 1, 0, 0, 10, tzinfo=datetime.timezone.utc)
    p = {"spec": {"activeDeadlineSeconds": 30}, "status": {"startTime": "2026-01-01T00:00:00Z"}}
    assert active_deadline.remaining(p, None, now) == 20
    assert active_deadline.remaining(p, None, now + datetime.timedelta(seconds=20)) == 0  # due: exceeded
    assert active_deadline.remaining({"spec": {}, "status": p["status"]}, None, now) is None
    # before the status shows a start time, the worker's own counts
    assert active_deadline.remaining({"spec": {"activeDeadlineSeconds": 5}}, "2026-01-01T00:00:08Z", now) == 3
    assert active_deadline.remaining({"spec": {"activeDeadlineSeconds": 5}}, None, now) is None


def test_allowed_unsafe_sysctls_flag():
    import argparse

    from kybernetes.cli import agent

    def parse(*argv):
        p = argparse.ArgumentParser()
        agent.add_arguments(p)
        return agent.kubelet_options(p.parse_args(list(argv)))
    assert "allowed_unsafe_sysctls" not in parse()
    assert parse("--allowed-unsafe-sysctls", "kernel.msg*, net.core.somaxconn")["allowed_unsafe_sysctls"] == \
        ["kernel.msg*", "net.core.somaxconn"]
    with pytest.raises(ValueError, match='--allowed-unsafe-sysctls: the sysctls "vm.swappiness" are not known'):
        parse("--allowed-unsafe-sysctls", "vm.swappiness")
