"""PodSpec defaulting and validation, shared by Pods and by every pod template
(ReplicationController, PodTemplate, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
CronJob), as upstream shares `SetDefaults_PodSpec` and `ValidatePodSpec`.

Not a resource module; `all_strategies()` does not list it.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    Cause,
    Obj,
    dig,
    duplicate,
    forbidden,
    invalid,
    not_found,
    not_supported,
    parse_quantity,
    required,
)

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")  # upstream lists the sorted set
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DEFAULT_MODE = 0o644  # 420, what secret/configMap/projected/downwardAPI volumes get

_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)


# ---------------------------------------------------------------------------- defaulting
def image_pull_policy(image: str) -> str:
    """Always for ":latest" or an untagged, undigested image; IfNotPresent otherwise."""
    if "@" in image:
        name = image.split("@", 1)[0]
        tag = _tag_of(name)
        return "Always" if tag == "latest" else "IfNotPresent"
    tag = _tag_of(image)
    return "Always" if tag in (None, "latest") else "IfNotPresent"


def _tag_of(ref: str) -> Optional[str]:
    # a ':' after the last '/' separates the tag (a ':' before it belongs to a registry port)
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def default_probe(probe: Optional[Obj]) -> None:
    if not probe:
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    default_handler(probe)


def default_handler(handler: Optional[Obj]) -> None:
    """httpGet defaults inside probes and lifecycle hooks."""
    http = (handler or {}).get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def default_container(c: Obj) -> None:
    """SetDefaults_Container and friends (ports, probes, env field refs)."""
    if not c.get("imagePullPolicy") and c.get("image"):
        c["imagePullPolicy"] = image_pull_policy(c["image"])
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    # a Go struct, not a pointer: it always serializes, as {} when empty
    if c.get("resources") is None:
        c["resources"] = {}
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        default_probe(c.get(key))
    for hook in ("postStart", "preStop"):
        default_handler(dig(c, "lifecycle", hook))
    for e in c.get("env") or []:
        ref = dig(e, "valueFrom", "fieldRef")
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")


def default_volume(v: Obj) -> None:
    if not any(k in v for k in _VOLUME_SOURCES):
        v["emptyDir"] = {}  # a volume without a source is an emptyDir upstream
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(v.get(key), dict):
            v[key].setdefault("defaultMode", DEFAULT_MODE)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    for src in dig(v, "projected", "sources", default=[]) or []:
        sat = src.get("serviceAccountToken")
        if isinstance(sat, dict):
            sat.setdefault("expirationSeconds", 3600)
    for item in dig(v, "downwardAPI", "items", default=[]) or []:
        ref = item.get("fieldRef")
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")
    if isinstance(v.get("iscsi"), dict):
        v["iscsi"].setdefault("iscsiInterface", "default")
    claim_spec = dig(v, "ephemeral", "volumeClaimTemplate", "spec")
    if isinstance(claim_spec, dict):
        claim_spec.setdefault("volumeMode", "Filesystem")


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec: what every pod spec, template or not, gets."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            default_container(c)
    if spec.get("hostNetwork"):
        # host networking: a container port is a host port
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                for p in c.get("ports") or []:
                    if not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort", 0)
    for v in spec.get("volumes") or []:
        default_volume(v)


def default_pod_template(template: Optional[Obj]) -> None:
    """Defaults for a PodTemplateSpec embedded in a workload."""
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


def default_pod_only(spec: Obj) -> None:
    """SetDefaults_Pod extras that apply to Pods, not to templates."""
    spec.setdefault("enableServiceLinks", True)
    # requests default to limits, resource by resource
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            res = c.get("resources") or {}
            limits = res.get("limits") or {}
            if limits:
                requests = res.setdefault("requests", {})
                for name, q in limits.items():
                    requests.setdefault(name, q)
                c["resources"] = res
    # what the Priority admission plugin fills in when no PriorityClass is involved
    if not spec.get("priorityClassName"):
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")


# ---------------------------------------------------------------------------- QoS
_QOS_RESOURCES = ("cpu", "memory")


def qos_class(spec: Obj) -> str:
    """upstream GetPodQOS: BestEffort, Burstable or Guaranteed."""
    pod_res = spec.get("resources") or {}
    if pod_res.get("requests") or pod_res.get("limits"):
        groups = [pod_res]  # pod-level resources decide when set
    else:
        groups = [c.get("resources") or {} for key in ("initContainers", "containers")
                  for c in spec.get(key) or []]
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for res in groups:
        for name, q in (res.get("requests") or {}).items():
            v = parse_quantity(q)
            if name in _QOS_RESOURCES and v is not None and v > 0:
                requests[name] = requests.get(name, 0) + v
        found = set()
        for name, q in (res.get("limits") or {}).items():
            v = parse_quantity(q)
            if name in _QOS_RESOURCES and v is not None and v > 0:
                limits[name] = limits.get(name, 0) + v
                found.add(name)
        if not set(_QOS_RESOURCES) <= found:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# ---------------------------------------------------------------------------- validation
def validate_pod_spec(spec: Obj, path: str, *, is_pod: bool = False) -> list[Cause]:
    """The ValidatePodSpec checks users meet most often, with upstream paths and messages."""
    causes: list[Cause] = []
    volumes = spec.get("volumes") or []
    vol_names = set()
    for i, v in enumerate(volumes):
        vp = f"{path}.volumes[{i}]"
        name = v.get("name") or ""
        if not name:
            causes.append(required(f"{vp}.name"))
        else:
            causes += [invalid(f"{vp}.name", name, m) for m in _checks.is_dns1123_label(name)]
            if name in vol_names:
                causes.append(duplicate(f"{vp}.name", name))
            vol_names.add(name)
    containers = spec.get("containers") or []
    if not containers:
        causes.append(required(f"{path}.containers"))
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            causes += _validate_container(c, f"{path}.{key}[{i}]", names, vol_names, is_pod=is_pod)
            if key == "initContainers" and c.get("restartPolicy") not in (None, "Always"):
                causes.append(not_supported(f"{path}.{key}[{i}].restartPolicy", c["restartPolicy"], ["Always"]))
    rp = spec.get("restartPolicy")
    if rp is None or rp == "":
        causes.append(required(f"{path}.restartPolicy"))
    elif rp not in RESTART_POLICIES:
        causes.append(not_supported(f"{path}.restartPolicy", rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy")
    if dp and dp not in DNS_POLICIES:
        causes.append(not_supported(f"{path}.dnsPolicy", dp, DNS_POLICIES))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and not (1 <= ads <= 2**31 - 1):
        causes.append(invalid(f"{path}.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive"))
    for k, v in (spec.get("nodeSelector") or {}).items():
        causes += [invalid(f"{path}.nodeSelector", k, m) for m in _checks.is_qualified_name(k)]
        causes += [invalid(f"{path}.nodeSelector", v, m) for m in _checks.is_valid_label_value(v)]
    causes += _validate_sysctls(spec, f"{path}.securityContext.sysctls")
    sa = spec.get("serviceAccountName")
    if sa:
        causes += [invalid(f"{path}.serviceAccountName", sa, m) for m in _checks.is_dns1123_subdomain(sa)]
    hn = spec.get("hostname")
    if hn:
        causes += [invalid(f"{path}.hostname", hn, m) for m in _checks.is_dns1123_label(hn)]
    sub = spec.get("subdomain")
    if sub:
        causes += [invalid(f"{path}.subdomain", sub, m) for m in _checks.is_dns1123_label(sub)]
    return causes


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
SYSCTL_NAME_RE = f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$"
SYSCTL_MAX_LENGTH = 253


def sysctl_namespace(name: str) -> str:
    """The namespace a sysctl belongs to: "ipc", "net", or "" (not namespaced); names
    may use `/` as the separator (only the leading part matters here)."""
    name = name.replace("/", ".")
    if name == "kernel.sem" or name.startswith(("kernel.shm", "kernel.msg", "fs.mqueue.")):
        return "ipc"
    if name.startswith("net."):
        return "net"
    return ""


def _validate_sysctls(spec: Obj, path: str) -> list[Cause]:
    """spec.securityContext.sysctls: valid unique names, none of the host's namespaces."""
    sc = spec.get("securityContext") or {}
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, s in enumerate(sc.get("sysctls") or []):
        name = str(s.get("name") or "")
        np = f"{path}[{i}].name"
        if not name:
            causes.append(required(np))
        elif len(name) > SYSCTL_MAX_LENGTH or not re.match(SYSCTL_NAME_RE, name):
            causes.append(invalid(np, name, f"must have at most {SYSCTL_MAX_LENGTH} characters and match regex "
                                            f"{SYSCTL_NAME_RE}"))
        elif name in seen:
            causes.append(duplicate(np, name))
        ns = sysctl_namespace(name)
        if spec.get("hostNetwork") and ns == "net":
            causes.append(invalid(np, name, "may not be specified when 'hostNetwork' is true"))
        elif spec.get("hostIPC") and ns == "ipc":
            causes.append(invalid(np, name, "may not be specified when 'hostIPC' is true"))
        seen.add(name)
    return causes


def _validate_container(c: Obj, path: str, names: set[str], volumes: set[str], *, is_pod: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        causes.append(required(f"{path}.name"))
    else:
        causes += [invalid(f"{path}.name", name, m) for m in _checks.is_dns1123_label(name)]
        if name in names:
            causes.append(duplicate(f"{path}.name", name))
        names.add(name)
    image = c.get("image") or ""
    if not image:
        causes.append(required(f"{path}.image"))
    elif is_pod and image != image.strip():
        causes.append(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    ipp = c.get("imagePullPolicy")
    if ipp and ipp not in PULL_POLICIES:
        causes.append(not_supported(f"{path}.imagePullPolicy", ipp, PULL_POLICIES))
    tmp = c.get("terminationMessagePolicy")
    if tmp and tmp not in ("File", "FallbackToLogsOnError"):
        causes.append(not_supported(f"{path}.terminationMessagePolicy", tmp, ["File", "FallbackToLogsOnError"]))
    port_names: set[str] = set()
    for i, p in enumerate(c.get("ports") or []):
        pp = f"{path}.ports[{i}]"
        pname = p.get("name")
        if pname:
            causes += [invalid(f"{pp}.name", pname, m) for m in _checks.is_valid_port_name(pname)]
            if pname in port_names:
                causes.append(duplicate(f"{pp}.name", pname))
            port_names.add(pname)
        cport = p.get("containerPort")
        if not cport:
            causes.append(required(f"{pp}.containerPort"))
        else:
            causes += [invalid(f"{pp}.containerPort", cport, m) for m in _checks.is_valid_port_num(cport)]
        hport = p.get("hostPort")
        if hport:
            causes += [invalid(f"{pp}.hostPort", hport, m) for m in _checks.is_valid_port_num(hport)]
        proto = p.get("protocol")
        if not proto:
            causes.append(required(f"{pp}.protocol"))
        elif proto not in PORT_PROTOCOLS:
            causes.append(not_supported(f"{pp}.protocol", proto, PORT_PROTOCOLS))
    for i, e in enumerate(c.get("env") or []):
        ename = e.get("name") or ""
        if not ename:
            causes.append(required(f"{path}.env[{i}].name"))
        else:
            causes += [invalid(f"{path}.env[{i}].name", ename, m) for m in _checks.is_env_var_name(ename)]
    mount_paths: set[str] = set()
    for i, m in enumerate(c.get("volumeMounts") or []):
        mp = f"{path}.volumeMounts[{i}]"
        mname = m.get("name") or ""
        if not mname:
            causes.append(required(f"{mp}.name"))
        elif mname not in volumes:
            causes.append(not_found(f"{mp}.name", mname))
        mpath = m.get("mountPath") or ""
        if not mpath:
            causes.append(required(f"{mp}.mountPath"))
        elif mpath in mount_paths:
            causes.append(invalid(f"{mp}.mountPath", mpath, "must be unique"))
        mount_paths.add(mpath)
    res = c.get("resources") or {}
    limits = res.get("limits") or {}
    for rname, q in (res.get("requests") or {}).items():
        if rname in limits:
            rq, lq = parse_quantity(q), parse_quantity(limits[rname])
            if rq is not None and lq is not None and rq > lq:
                causes.append(invalid(f"{path}.resources.requests[{rname}]", str(q),
                                      f"must be less than or equal to {rname} limit of {limits[rname]}"))
    return causes


def validate_template_labels(template: Obj, path: str) -> list[Cause]:
    """Template metadata labels must be valid label keys and values."""
    causes: list[Cause] = []
    for k, v in (dig(template, "metadata", "labels") or {}).items():
        causes += [invalid(f"{path}.metadata.labels", k, m) for m in _checks.is_qualified_name(k)]
        causes += [invalid(f"{path}.metadata.labels", v, m) for m in _checks.is_valid_label_value(str(v))]
    return causes


# ---------------------------------------------------------------------------- pod updates
POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def validate_pod_spec_update(new: Obj, old: Obj, path: str = "spec") -> list[Cause]:
    """Which parts of a running pod's spec may change (upstream ValidatePodUpdate)."""
    if len(new.get("containers") or []) != len(old.get("containers") or []):
        return [forbidden(f"{path}.containers", "pod updates may not add or remove containers")]
    if len(new.get("initContainers") or []) != len(old.get("initContainers") or []):
        return [forbidden(f"{path}.initContainers", "pod updates may not add or remove containers")]
    # activeDeadlineSeconds may be set or shortened, never lengthened or removed
    new_ads, old_ads = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_ads is not None:
        if not 0 <= new_ads <= 2**31 - 1:
            return [invalid(f"{path}.activeDeadlineSeconds", new_ads, "must be between 0 and 2147483647, inclusive")]
        if old_ads is not None and old_ads < new_ads:
            return [invalid(f"{path}.activeDeadlineSeconds", new_ads, "must be less than or equal to previous value")]
    elif old_ads is not None:
        # upstream shows the nil value as the quoted string "null"
        return [invalid(f"{path}.activeDeadlineSeconds", "null",
                        "must not update from a positive integer to nil value")]
    munged = copy.deepcopy(old)
    # the fields that may change are copied from `new`; anything else that differs is forbidden
    for key in ("containers", "initContainers"):
        for mc, nc in zip(munged.get(key) or [], new.get(key) or []):
            mc["image"] = nc.get("image")
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        if key in new:
            munged[key] = new[key]
        else:
            munged.pop(key, None)
    old_tol = old.get("tolerations") or []
    new_tol = new.get("tolerations") or []
    if all(t in new_tol for t in old_tol):
        if "tolerations" in new:
            munged["tolerations"] = new["tolerations"]
        else:
            munged.pop("tolerations", None)
    old_gates = old.get("schedulingGates") or []
    new_gates = new.get("schedulingGates") or []
    causes: list[Cause] = []
    if old_gates and (new.get("nodeSelector") or {}) != (old.get("nodeSelector") or {}):
        # a pod still gated from scheduling may gain node selector terms, never lose or change one
        new_sel, old_sel = new.get("nodeSelector") or {}, old.get("nodeSelector") or {}
        if any(new_sel.get(k) != v for k, v in old_sel.items()):
            causes.append(invalid(f"{path}.nodeSelector", new_sel,
                                  "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
        munged.pop("nodeSelector", None)
        if "nodeSelector" in new:
            munged["nodeSelector"] = new["nodeSelector"]
    if all(g in old_gates for g in new_gates):  # gates may only be removed
        if "schedulingGates" in new:
            munged["schedulingGates"] = new["schedulingGates"]
        else:
            munged.pop("schedulingGates", None)
    if munged == new:
        return causes
    changed = sorted(k for k in set(munged) | set(new) if munged.get(k) != new.get(k))
    return causes + [forbidden(path, POD_UPDATE_MESSAGE + "\n" + _diff_summary(changed))]


def _diff_summary(changed: list[str]) -> str:
    # upstream appends a cmp.Diff of the specs; a list of the changed fields serves the same purpose
    return "  core.PodSpec{\n" + "".join(f"  \t{k}: changed\n" for k in changed) + "  }\n"
