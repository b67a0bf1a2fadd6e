"""The Pod Security Standards checks (upstream k8s.io/pod-security-admission/policy).

Each check looks at a pod's metadata and spec (plain dicts) and answers allowed, or a
short reason plus a detail naming the offending containers/values.  Checks are versioned:
a namespace pinned to ``v1.N`` gets the newest revision of each check whose minimum
version is at most 1.N; ``latest`` (and any version newer than the newest check) gets
the newest revisions.  The evaluation order is upstream's: baseline check IDs sorted,
then restricted check IDs sorted, so the aggregated messages match byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

Obj = dict[str, Any]

PRIVILEGED, BASELINE, RESTRICTED = "privileged", "baseline", "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)
LATEST_MINOR = 37  # this server's Kubernetes minor version


@dataclass(frozen=True)
class Result:
    allowed: bool
    reason: str = ""
    detail: str = ""


ALLOWED = Result(True)
CheckFn = Callable[[Obj, Obj], Result]


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    versions: tuple[tuple[int, CheckFn], ...]  # (minimum 1.x minor, fn), increasing
    overrides: tuple[str, ...] = ()  # baseline checks a restricted check replaces

    def for_version(self, minor: int) -> Optional[CheckFn]:
        fn = None
        for min_minor, f in self.versions:
            if min_minor <= minor:
                fn = f
        return fn


# ------------------------------------------------------------------ helpers
def join_quote(items: list[str]) -> str:
    return ('"' + '", "'.join(items) + '"') if items else ""


def plural(singular: str, plural_: str, n: int) -> str:
    return singular if n == 1 else plural_


def containers(spec: Obj) -> Iterator[Obj]:
    """Init containers, containers, then ephemeral containers (upstream's visit order)."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or ():
            if isinstance(c, dict):
                yield c


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _pod_sc(spec: Obj) -> Obj:
    return _sc(spec)


def _setters(pod_bad: bool, bad_containers: list[str]) -> list[str]:
    out = ["pod"] if pod_bad else []
    if bad_containers:
        out.append(f"{plural('container', 'containers', len(bad_containers))} {join_quote(bad_containers)}")
    return out


def _user_namespace_pod(spec: Obj) -> bool:
    return spec.get("hostUsers") is False


# ------------------------------------------------------------------ baseline
def allow_privilege_escalation(meta: Obj, spec: Obj) -> Result:
    bad = [c.get("name", "") for c in containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return Result(False, "allowPrivilegeEscalation != false",
                      f"{plural('container', 'containers', len(bad))} {join_quote(bad)} must set "
                      "securityContext.allowPrivilegeEscalation=false")
    return ALLOWED


def _apparmor_annotation_ok(v: str) -> bool:
    return v == "" or v == "runtime/default" or v.startswith("localhost/")


def app_armor_profile(meta: Obj, spec: Obj) -> Result:
    ok_types = ("RuntimeDefault", "Localhost")
    bad_values: set[str] = set()
    pod_bad = False
    pod_profile = _pod_sc(spec).get("appArmorProfile")
    if isinstance(pod_profile, dict) and pod_profile.get("type") not in ok_types:
        pod_bad = True
        bad_values.add(str(pod_profile.get("type") or ""))
    bad_containers = []
    for c in containers(spec):
        prof = _sc(c).get("appArmorProfile")
        if isinstance(prof, dict) and prof.get("type") not in ok_types:
            bad_containers.append(c.get("name", ""))
            bad_values.add(str(prof.get("type") or ""))
    setters = _setters(pod_bad, bad_containers)
    annotations = meta.get("annotations") or {}
    forbidden = sorted(f"{k}={go_quote(str(v))}" for k, v in annotations.items()
                       if k.startswith("container.apparmor.security.beta.kubernetes.io/")
                       and not _apparmor_annotation_ok(str(v)))
    values = sorted(bad_values) + forbidden
    if forbidden:
        setters.append(plural("annotation", "annotations", len(forbidden)))
    if setters:
        return Result(False, plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values)),
                      f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}")
    return ALLOWED


_BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                  "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}


def _caps(c: Obj) -> Optional[Obj]:
    caps = _sc(c).get("capabilities")
    return caps if isinstance(caps, dict) else None


def capabilities_baseline(meta: Obj, spec: Obj) -> Result:
    bad, extra = [], set()
    for c in containers(spec):
        caps = _caps(c)
        if caps is None:
            continue
        added = [str(x) for x in caps.get("add") or () if str(x) not in _BASELINE_CAPS]
        if added:
            bad.append(c.get("name", ""))
            extra.update(added)
    if bad:
        return Result(False, "non-default capabilities",
                      f"{plural('container', 'containers', len(bad))} {join_quote(bad)} must not include "
                      f"{join_quote(sorted(extra))} in securityContext.capabilities.add")
    return ALLOWED


def capabilities_restricted(meta: Obj, spec: Obj) -> Result:
    missing_drop, adding, forbidden = [], [], set()
    for c in containers(spec):
        caps = _caps(c)
        if caps is None:
            missing_drop.append(c.get("name", ""))
            continue
        if "ALL" not in [str(x) for x in caps.get("drop") or ()]:
            missing_drop.append(c.get("name", ""))
        added = [str(x) for x in caps.get("add") or () if str(x) != "NET_BIND_SERVICE"]
        if added:
            adding.append(c.get("name", ""))
            forbidden.update(added)
    details = []
    if missing_drop:
        details.append(f"{plural('container', 'containers', len(missing_drop))} {join_quote(missing_drop)} must set "
                       'securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{plural('container', 'containers', len(adding))} {join_quote(adding)} must not include "
                       f"{join_quote(sorted(forbidden))} in securityContext.capabilities.add")
    if details:
        return Result(False, "unrestricted capabilities", "; ".join(details))
    return ALLOWED


def host_namespaces(meta: Obj, spec: Obj) -> Result:
    found = sorted(k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True)
    if found:
        return Result(False, "host namespaces", ", ".join(found))
    return ALLOWED


def _volumes(spec: Obj) -> list[Obj]:
    return [v for v in spec.get("volumes") or () if isinstance(v, dict)]


def host_path_volumes(meta: Obj, spec: Obj) -> Result:
    bad = [v.get("name", "") for v in _volumes(spec) if v.get("hostPath") is not None]
    if bad:
        return Result(False, "hostPath volumes", f"{plural('volume', 'volumes', len(bad))} {join_quote(bad)}")
    return ALLOWED


def host_ports(meta: Obj, spec: Obj) -> Result:
    bad, ports = [], set()
    for c in containers(spec):
        used = [p.get("hostPort") for p in c.get("ports") or () if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports.update(str(p) for p in used)
    if bad:
        return Result(False, "hostPort",
                      f"{plural('container', 'containers', len(bad))} {join_quote(bad)} "
                      f"{plural('uses', 'use', len(bad))} {plural('hostPort', 'hostPorts', len(ports))} "
                      f"{', '.join(sorted(ports))}")
    return ALLOWED


def _hosts(handler: Any) -> list[str]:
    if not isinstance(handler, dict):
        return []
    out = []
    for kind in ("httpGet", "tcpSocket"):
        h = handler.get(kind)
        if isinstance(h, dict) and h.get("host"):
            out.append(str(h["host"]))
    return out


def host_probes_and_lifecycle(meta: Obj, spec: Obj) -> Result:
    bad: set[str] = set()
    hosts: set[str] = set()
    for c in containers(spec):
        found = []
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            found += _hosts(c.get(probe))
        lifecycle = c.get("lifecycle")
        if isinstance(lifecycle, dict):
            found += _hosts(lifecycle.get("postStart")) + _hosts(lifecycle.get("preStop"))
        if found:
            bad.add(c.get("name", ""))
            hosts.update(found)
    if bad:
        return Result(False, "probe or lifecycle host",
                      f"{plural('container', 'containers', len(bad))} {join_quote(sorted(bad))} "
                      f"{plural('uses', 'use', len(bad))} "
                      f"{plural('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} "
                      f"{join_quote(sorted(hosts))}")
    return ALLOWED


def privileged(meta: Obj, spec: Obj) -> Result:
    bad = [c.get("name", "") for c in containers(spec) if _sc(c).get("privileged") is True]
    if bad:
        return Result(False, "privileged", f"{plural('container', 'containers', len(bad))} {join_quote(bad)} "
                                           "must not set securityContext.privileged=true")
    return ALLOWED


def proc_mount_strict(meta: Obj, spec: Obj) -> Result:
    bad, types = [], set()
    for c in containers(spec):
        pm = _sc(c).get("procMount")
        if pm is not None and pm != "Default":
            bad.append(c.get("name", ""))
            types.add(str(pm))
    if bad:
        return Result(False, "procMount", f"{plural('container', 'containers', len(bad))} {join_quote(bad)} "
                                          f"must not set securityContext.procMount to {join_quote(sorted(types))}")
    return ALLOWED


def proc_mount_baseline(meta: Obj, spec: Obj) -> Result:
    """1.35+: pods in a user namespace (hostUsers: false) may unmask /proc."""
    if _user_namespace_pod(spec):
        return ALLOWED
    return proc_mount_strict(meta, spec)


_ALLOWED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret")
_RESTRICTED_VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                              "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                              "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                              "scaleIO", "storageos")


def restricted_volumes(meta: Obj, spec: Obj) -> Result:
    bad, types = [], set()
    for v in _volumes(spec):
        if any(v.get(k) is not None for k in _ALLOWED_VOLUME_SOURCES):
            continue
        bad.append(v.get("name", ""))
        kind = next((k for k in _RESTRICTED_VOLUME_SOURCES if v.get(k) is not None), "unknown")
        types.add(kind)
    if bad:
        return Result(False, "restricted volume types",
                      f"{plural('volume', 'volumes', len(bad))} {join_quote(bad)} {plural('uses', 'use', len(bad))} "
                      f"{plural('restricted volume type', 'restricted volume types', len(types))} "
                      f"{join_quote(sorted(types))}")
    return ALLOWED


def _run_as_non_root(meta: Obj, spec: Obj, relax: bool) -> Result:
    if relax and _user_namespace_pod(spec):
        return ALLOWED
    pod_value = _pod_sc(spec).get("runAsNonRoot")
    pod_bad = pod_value is False
    pod_ok = pod_value is True
    explicit, implicit = [], []
    for c in containers(spec):
        v = _sc(c).get("runAsNonRoot")
        if v is not None:
            if v is False:
                explicit.append(c.get("name", ""))
        elif not pod_ok:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return Result(False, "runAsNonRoot != true",
                      f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return Result(False, "runAsNonRoot != true",
                      f"pod or {plural('container', 'containers', len(implicit))} {join_quote(implicit)} "
                      "must set securityContext.runAsNonRoot=true")
    return ALLOWED


def run_as_non_root(meta: Obj, spec: Obj) -> Result:
    return _run_as_non_root(meta, spec, relax=False)


def run_as_non_root_userns(meta: Obj, spec: Obj) -> Result:
    return _run_as_non_root(meta, spec, relax=True)


def _run_as_user(meta: Obj, spec: Obj, relax: bool) -> Result:
    if relax and _user_namespace_pod(spec):
        return ALLOWED
    pod_bad = _is_zero(_pod_sc(spec).get("runAsUser"))
    explicit = [c.get("name", "") for c in containers(spec) if _is_zero(_sc(c).get("runAsUser"))]
    setters = _setters(pod_bad, explicit)
    if setters:
        return Result(False, "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return ALLOWED


def _is_zero(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v == 0


def run_as_user(meta: Obj, spec: Obj) -> Result:
    return _run_as_user(meta, spec, relax=False)


def run_as_user_userns(meta: Obj, spec: Obj) -> Result:
    return _run_as_user(meta, spec, relax=True)


_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}


def se_linux_options(meta: Obj, spec: Obj) -> Result:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def valid(opts: Obj) -> bool:
        ok = True
        t = str(opts.get("type") or "")
        if t not in _SELINUX_TYPES:
            ok = False
            bad_types.add(t)
        for k in ("user", "role"):
            if opts.get(k):
                ok = False
                flags[k] = True
        return ok

    pod_opts = _pod_sc(spec).get("seLinuxOptions")
    pod_bad = isinstance(pod_opts, dict) and not valid(pod_opts)
    bad = []
    for c in containers(spec):
        opts = _sc(c).get("seLinuxOptions")
        if isinstance(opts, dict) and not valid(opts):
            bad.append(c.get("name", ""))
    setters = _setters(pod_bad, bad)
    if setters:
        data = []
        # upstream lists user/role only alongside a bad type
        if bad_types:
            data.append(f"{plural('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
            if flags["user"]:
                data.append("user may not be set")
            if flags["role"]:
                data.append("role may not be set")
        return Result(False, "seLinuxOptions",
                      f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")
    return ALLOWED


def _seccomp_annotation_ok(v: str) -> bool:
    return v in ("runtime/default", "docker/default") or v.startswith("localhost/")


def seccomp_baseline_annotations(meta: Obj, spec: Obj) -> Result:
    """Policy versions before 1.19 read the alpha annotations."""
    annotations = meta.get("annotations") or {}
    bad = set()
    key = "seccomp.security.alpha.kubernetes.io/pod"
    if key in annotations and not _seccomp_annotation_ok(str(annotations[key])):
        bad.add(f"{key}={go_quote(str(annotations[key]))}")
    for c in containers(spec):
        k = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name", ""))
        if k in annotations and not _seccomp_annotation_ok(str(annotations[k])):
            bad.add(f"{k}={go_quote(str(annotations[k]))}")
    if bad:
        return Result(False, "seccompProfile",
                      f"forbidden {plural('annotation', 'annotations', len(bad))} {', '.join(sorted(bad))}")
    return ALLOWED


def _seccomp_type(obj: Obj) -> Optional[str]:
    prof = obj.get("seccompProfile")
    if isinstance(prof, dict):
        return str(prof.get("type") or "")
    return None


def _seccomp(meta: Obj, spec: Obj, restricted: bool) -> Result:
    ok = ("RuntimeDefault", "Localhost")
    values: set[str] = set()
    pod_type = _seccomp_type(_pod_sc(spec))
    pod_bad = pod_type is not None and pod_type not in ok
    if pod_bad:
        values.add(pod_type or "")
    pod_set = pod_type is not None and not pod_bad
    explicit, implicit = [], []
    for c in containers(spec):
        t = _seccomp_type(_sc(c))
        if t is not None:
            if t not in ok:
                explicit.append(c.get("name", ""))
                values.add(t)
        elif not pod_set:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_bad, explicit)
    if setters:
        return Result(False, "seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile."
                                               f"type to {join_quote(sorted(values))}")
    if restricted and implicit:
        return Result(False, "seccompProfile",
                      f"pod or {plural('container', 'containers', len(implicit))} {join_quote(implicit)} must set "
                      'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return ALLOWED


def seccomp_baseline(meta: Obj, spec: Obj) -> Result:
    return _seccomp(meta, spec, restricted=False)


def seccomp_restricted(meta: Obj, spec: Obj) -> Result:
    return _seccomp(meta, spec, restricted=True)


_SYSCTLS_1_0 = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                                 "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}


def _sysctls(allowed: set[str]) -> CheckFn:
    def check(meta: Obj, spec: Obj) -> Result:
        bad = [str(s.get("name", "")) for s in _pod_sc(spec).get("sysctls") or ()
               if isinstance(s, dict) and s.get("name") not in allowed]
        if bad:
            return Result(False, "forbidden sysctls", ", ".join(bad))
        return ALLOWED
    return check


def ulimits(meta: Obj, spec: Obj) -> Result:
    bad = [c.get("name", "") for c in containers(spec) if _sc(c).get("ulimits") is not None]
    if bad:
        return Result(False, "ulimits", f"{plural('container', 'containers', len(bad))} {join_quote(bad)} "
                                        "must not set securityContext.ulimits")
    return ALLOWED


def windows_host_process(meta: Obj, spec: Obj) -> Result:
    def host_process(sc: Obj) -> bool:
        w = sc.get("windowsOptions")
        return isinstance(w, dict) and w.get("hostProcess") is True

    bad = [c.get("name", "") for c in containers(spec) if host_process(_sc(c))]
    setters = _setters(host_process(_pod_sc(spec)), bad)
    if setters:
        return Result(False, "hostProcess",
                      f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")
    return ALLOWED


def go_quote(s: str) -> str:
    from kybernetes.api.goformat import go_quote as q

    return q(s)


CHECKS: tuple[Check, ...] = (
    Check("allowPrivilegeEscalation", RESTRICTED, ((8, allow_privilege_escalation),)),
    Check("appArmorProfile", BASELINE, ((0, app_armor_profile),)),
    Check("capabilities_baseline", BASELINE, ((0, capabilities_baseline),)),
    Check("capabilities_restricted", RESTRICTED, ((22, capabilities_restricted),)),
    Check("hostNamespaces", BASELINE, ((0, host_namespaces),)),
    Check("hostPathVolumes", BASELINE, ((0, host_path_volumes),)),
    Check("hostPorts", BASELINE, ((0, host_ports),)),
    Check("hostProbesAndHostLifecycle", BASELINE, ((34, host_probes_and_lifecycle),)),
    Check("privileged", BASELINE, ((0, privileged),)),
    Check("procMount_baseline", BASELINE, ((0, proc_mount_strict), (35, proc_mount_baseline))),
    Check("procMount_restricted", RESTRICTED, ((35, proc_mount_strict),)),
    Check("restrictedVolumes", RESTRICTED, ((0, restricted_volumes),), overrides=("hostPathVolumes",)),
    Check("runAsNonRoot", RESTRICTED, ((0, run_as_non_root), (35, run_as_non_root_userns))),
    Check("runAsUser", RESTRICTED, ((23, run_as_user), (35, run_as_user_userns))),
    Check("seLinuxOptions", BASELINE, ((0, se_linux_options),)),
    Check("seccompProfile_baseline", BASELINE, ((0, seccomp_baseline_annotations), (19, seccomp_baseline))),
    Check("seccompProfile_restricted", RESTRICTED, ((19, seccomp_restricted),)),
    Check("sysctls", BASELINE, ((0, _sysctls(_SYSCTLS_1_0)), (27, _sysctls(_SYSCTLS_1_27)),
                                (29, _sysctls(_SYSCTLS_1_29)), (32, _sysctls(_SYSCTLS_1_32)))),
    Check("ulimits", BASELINE, ((37, ulimits),)),
    Check("windowsHostProcess", BASELINE, ((0, windows_host_process),)),
)


def checks_for(level: str, minor: Optional[int], registry: tuple[Check, ...] = CHECKS) -> list[CheckFn]:
    """The check functions of a level at a policy version (None = latest), in upstream order."""
    if level == PRIVILEGED:
        return []
    v = LATEST_MINOR if minor is None or minor > LATEST_MINOR else minor
    baseline = sorted((c for c in registry if c.level == BASELINE), key=lambda c: c.id.encode())
    restricted = sorted((c for c in registry if c.level == RESTRICTED), key=lambda c: c.id.encode())
    chosen = baseline
    if level == RESTRICTED:
        active = [c for c in restricted if c.for_version(v) is not None]
        overridden = {o for c in active for o in c.overrides}
        chosen = [c for c in baseline if c.id not in overridden] + restricted
    return [fn for fn in (c.for_version(v) for c in chosen) if fn is not None]


def evaluate(level: str, minor: Optional[int], meta: Obj, spec: Obj) -> list[Result]:
    """Every failed check of the pod at this level and version."""
    return [r for r in (fn(meta, spec) for fn in checks_for(level, minor)) if not r.allowed]


def forbidden_reason(results: list[Result]) -> str:
    """`host namespaces, privileged` (what the namespace-label warning lists)."""
    return ", ".join(r.reason or "unknown forbidden reason" for r in results)


def forbidden_detail(results: list[Result]) -> str:
    """`reason (detail), reason (detail)`, as upstream's AggregateCheckResult."""
    return ", ".join((r.reason or "unknown forbidden reason") + (f" ({r.detail})" if r.detail else "")
                     for r in results)
