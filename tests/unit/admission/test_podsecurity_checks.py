"""Pod Security Standards checks: each level's verdicts and upstream's exact wording."""

from __future__ import annotations

from kybernetes.admission.podsecurity_checks import (BASELINE, PRIVILEGED, RESTRICTED, checks_for, evaluate,
                                                     forbidden_detail, forbidden_reason)


def spec(*containers, **pod):
    return {"containers": list(containers) or [{"name": "c", "image": "i"}], **pod}


RESTRICTED_OK = {"name": "c", "image": "i", "securityContext": {
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"}}}


def detail(level, s, meta=None, minor=None):
    return forbidden_detail(evaluate(level, minor, meta or {}, s))


def test_plain_pod_at_each_level():
    assert evaluate(PRIVILEGED, None, {}, spec()) == []
    assert evaluate(BASELINE, None, {}, spec()) == []
    assert detail(RESTRICTED, spec()) == (
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
        '"Localhost")')
    assert evaluate(RESTRICTED, None, {}, spec(RESTRICTED_OK)) == []


def test_baseline_violations_in_upstream_order():
    s = spec({"name": "a", "image": "i", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]}},
              "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9, "hostPort": 10000}]},
             hostNetwork=True, hostPID=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}],
             securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "1"}]})
    assert detail(BASELINE, s) == (
        'non-default capabilities (container "a" must not include "NET_RAW", "SYS_ADMIN" in '
        'securityContext.capabilities.add), host namespaces (hostNetwork, hostPID), hostPath volumes (volume "h"), '
        'hostPort (container "a" uses hostPorts 10000, 8080), privileged (container "a" must not set '
        'securityContext.privileged=true), forbidden sysctls (kernel.msgmax)')
    assert forbidden_reason(evaluate(BASELINE, None, {}, s)) == (
        "non-default capabilities, host namespaces, hostPath volumes, hostPort, privileged, forbidden sysctls")


def test_restricted_replaces_hostpath_with_volume_types():
    s = spec(RESTRICTED_OK, volumes=[{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "x", "path": "/"}},
                                     {"name": "e", "emptyDir": {}}])
    assert detail(RESTRICTED, s) == (
        'restricted volume types (volumes "h", "n" use restricted volume types "hostPath", "nfs")')


def test_setters_pod_and_containers():
    s = spec({"name": "a", "image": "i", "securityContext": {"seccompProfile": {"type": "Unconfined"},
                                                             "seLinuxOptions": {"type": "spc_t", "user": "u"},
                                                             "windowsOptions": {"hostProcess": True},
                                                             "appArmorProfile": {"type": "Unconfined"},
                                                             "procMount": "Unmasked"}},
             securityContext={"seccompProfile": {"type": "Unconfined"}, "windowsOptions": {"hostProcess": True}})
    out = detail(BASELINE, s, meta={"annotations": {"container.apparmor.security.beta.kubernetes.io/a": "unconfined"}})
    assert out == (
        'forbidden AppArmor profiles (container "a" and annotation must not set AppArmor profile type to '
        '"Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined""), '
        'procMount (container "a" must not set securityContext.procMount to "Unmasked"), '
        'seLinuxOptions (container "a" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set), '
        'seccompProfile (pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined"), '
        'hostProcess (pod and container "a" must not set securityContext.windowsOptions.hostProcess=true)')


def test_run_as_user_zero_and_run_as_non_root_false():
    ok = dict(RESTRICTED_OK, securityContext=dict(RESTRICTED_OK["securityContext"], runAsUser=0, runAsNonRoot=False))
    assert detail(RESTRICTED, spec(ok, securityContext={"runAsUser": 0})) == (
        'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false), '
        'runAsUser=0 (pod and container "c" must not set runAsUser=0)')


def test_restricted_capabilities_add():
    c = dict(RESTRICTED_OK, securityContext=dict(RESTRICTED_OK["securityContext"],
                                                 capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]}))
    assert detail(RESTRICTED, spec(c)) == (
        'unrestricted capabilities (container "c" must not include "CHOWN" in securityContext.capabilities.add)')


def test_versions():
    # hostProbesAndHostLifecycle only from v1.34; sysctl allow list grows over time
    probe = {"name": "c", "image": "i", "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}
    assert detail(BASELINE, spec(probe), minor=33) == ""
    assert detail(BASELINE, spec(probe)) == (
        'probe or lifecycle host (container "c" uses probe or lifecycle host "10.0.0.1")')
    keepalive = spec(securityContext={"sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "1"}]})
    assert detail(BASELINE, keepalive, minor=28) == "forbidden sysctls (net.ipv4.tcp_keepalive_time)"
    assert detail(BASELINE, keepalive, minor=29) == ""
    # a version newer than this server's is evaluated as latest
    assert len(checks_for(RESTRICTED, 99)) == len(checks_for(RESTRICTED, None))
    # user-namespaced pods may unmask /proc at baseline from v1.35
    unmasked = spec({"name": "c", "image": "i", "securityContext": {"procMount": "Unmasked"}}, hostUsers=False)
    assert detail(BASELINE, unmasked) == ""
    assert detail(BASELINE, unmasked, minor=34).startswith("procMount")
