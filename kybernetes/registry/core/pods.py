"""Pods: the unit of scheduling; also their status and binding subresources.

The READY / STATUS / RESTARTS logic of `kubectl get pods` lives here (`pod_summary`), so
controllers and the CLI can reuse it.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from kybernetes.api.meta import parse_time
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    dig,
    forbidden,
    not_found,
    since,
)
from kybernetes.registry.core import podspec

NODE_UNREACHABLE_REASON = "NodeLost"  # what the node lifecycle controller writes on lost nodes


class PodSummary(NamedTuple):
    ready: str  # "1/2"
    status: str  # "Running", "CrashLoopBackOff", "Init:0/1", "Terminating", ...
    restarts: str  # "0" or "3 (5m ago)"


def _is_restartable_init(container: Optional[Obj]) -> bool:
    """A sidecar: an init container with restartPolicy Always."""
    return bool(container) and container.get("restartPolicy") == "Always"


def _condition_true(pod: Obj, ctype: str) -> bool:
    for c in dig(pod, "status", "conditions", default=[]) or []:
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def _later(a: Optional[str], b: Optional[str]) -> Optional[str]:
    """The later of two timestamps (None counts as the zero time)."""
    ta, tb = parse_time(a or ""), parse_time(b or "")
    if tb is None:
        return a
    if ta is None or tb > ta:
        return b
    return a


def pod_summary(pod: Obj) -> PodSummary:
    """READY, STATUS and RESTARTS cells exactly as upstream's pod printer computes them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(
        1 for c in spec.get("initContainers") or [] if _is_restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: Optional[str] = None
    last_sidecar_restart: Optional[str] = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += cs.get("restartCount") or 0
        finished = dig(cs, "lastState", "terminated", "finishedAt")
        if dig(cs, "lastState", "terminated") is not None:
            last_restart = _later(last_restart, finished)
        sidecar = _is_restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount") or 0
            if dig(cs, "lastState", "terminated") is not None:
                last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated = dig(cs, "state", "terminated")
        waiting = dig(cs, "state", "waiting")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{terminated.get('exitCode') or 0}"
            else:
                reason = "Init:" + terminated["reason"]
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break

    if not initializing or _condition_true(pod, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        # upstream walks the statuses backwards, so the first container's reason wins
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount") or 0
            if dig(cs, "lastState", "terminated") is not None:
                last_restart = _later(last_restart, dig(cs, "lastState", "terminated", "finishedAt"))
            waiting = dig(cs, "state", "waiting")
            terminated = dig(cs, "state", "terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode') or 0}"
            elif cs.get("ready") and dig(cs, "state", "running") is not None:
                has_running = True
                ready += 1
        # a pod whose containers say Completed but one still runs is Running (or NotReady)
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(pod, "Ready") else "NotReady"

    deleting = bool(dig(pod, "metadata", "deletionTimestamp"))
    if deleting and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart and parse_time(last_restart) is not None:
        restarts_cell = f"{restarts} ({since(last_restart)} ago)"
    return PodSummary(f"{ready}/{total}", reason, restarts_cell)


def readiness_gates_cell(pod: Obj) -> str:
    gates = dig(pod, "spec", "readinessGates", default=[]) or []
    if not gates:
        return "<none>"
    conditions = dig(pod, "status", "conditions", default=[]) or []
    true = 0
    for g in gates:
        for c in conditions:
            if c.get("type") == g.get("conditionType"):
                true += c.get("status") == "True"
                break
    return f"{true}/{len(gates)}"


def _first_pod_ip(pod: Obj) -> str:
    return dig(pod, "status", "podIPs", 0, "ip", default="") or ""


_P = "io.k8s.api.core.v1."


_IP_HINT = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def status_ip_causes(status: Obj) -> list[Cause]:
    import ipaddress

    from kybernetes.api.goformat import go_quote

    causes = []
    for single, plural in (("podIP", "podIPs"), ("hostIP", "hostIPs")):
        entries = status.get(plural) or []
        ips = [e.get("ip", "") for e in entries if isinstance(e, dict)] if entries else \
            ([status[single]] if status.get(single) else [])
        for i, ip in enumerate(ips):
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                causes.append(Cause("FieldValueInvalid", f"status.{plural}[{i}]",
                                    f"Invalid value: {go_quote(str(ip))}: {_IP_HINT}"))
    return causes


class PodStrategy(Strategy):
    """core/v1 Pod."""

    group = ""
    version = "v1"
    kind = "Pod"
    resource = "pods"
    singular = "pod"
    short_names = ("po",)
    return_deleted_object = True
    categories = ("all",)
    # log, exec, attach and portforward are served by the pod's kubelet (apiserver/kubelet_proxy.py)
    subresources = ("status", "binding", "eviction", "log", "exec", "attach", "portforward",
                    "ephemeralcontainers")
    # upstream also serves these; routed once their handlers exist
    future_subresources = ("proxy", "resize")
    has_status_split = True

    columns = (
        NAME_COLUMN,
        column("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
        column("Status", doc="The aggregate status of the containers in this pod."),
        column("Restarts", doc="The number of times the containers in this pod have been restarted "
                               "and when the last container in this pod has restarted."),
        AGE_COLUMN,
        column("IP", doc=(_P + "PodStatus", "podIP"), priority=1),
        column("Node", doc=(_P + "PodSpec", "nodeName"), priority=1),
        column("Nominated Node", doc=(_P + "PodStatus", "nominatedNodeName"), priority=1),
        column("Readiness Gates", doc=(_P + "PodSpec", "readinessGates"), priority=1),
    )

    field_selectors = {
        "spec.nodeName": lambda o: dig(o, "spec", "nodeName", default=""),
        "spec.restartPolicy": lambda o: dig(o, "spec", "restartPolicy", default=""),
        "spec.schedulerName": lambda o: dig(o, "spec", "schedulerName", default=""),
        "spec.serviceAccountName": lambda o: dig(o, "spec", "serviceAccountName", default=""),
        "spec.hostNetwork": lambda o: "true" if dig(o, "spec", "hostNetwork") else "false",
        "status.phase": lambda o: dig(o, "status", "phase", default=""),
        "status.podIP": _first_pod_ip,
        "status.nominatedNodeName": lambda o: dig(o, "status", "nominatedNodeName", default=""),
    }

    def field_values(self, obj: Obj) -> dict[str, Any]:
        out = super().field_values(obj)
        out["spec.host"] = out["spec.nodeName"]  # old v1 clients' spelling, accepted upstream
        return out

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        podspec.default_pod_spec(spec)
        podspec.default_pod_only(spec)

    def prepare_for_create(self, obj: Obj) -> None:
        """A new pod starts Pending with its QoS class; gated pods say why they wait."""
        spec = obj.get("spec") or {}
        status: Obj = {"phase": "Pending", "qosClass": podspec.qos_class(spec)}
        if spec.get("schedulingGates"):
            status["conditions"] = [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
            }]
        obj["status"] = status

    def validate(self, obj: Obj) -> list[Cause]:
        causes = _validate_pod_spec(obj)
        if (obj.get("spec") or {}).get("ephemeralContainers"):
            # upstream ValidatePodCreate: they are added through pods/ephemeralcontainers only
            causes.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = _validate_pod_spec(new)
        causes += podspec.validate_pod_spec_update(new.get("spec") or {}, old.get("spec") or {})
        return causes

    def prepare_for_ephemeral_update(self, new: Obj, old: Obj) -> None:
        """pods/ephemeralcontainers: only spec.ephemeralContainers comes from `new`."""
        prepare_for_ephemeral_update(new, old)

    def validate_ephemeral_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validate_ephemeral_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        """The addresses a status write reports must be IPs (upstream validatePodIPs /
        validateHostIPs; a lone podIP/hostIP stands for the first element of the list)."""
        return status_ip_causes(new.get("status") or {})

    def row(self, obj: Obj) -> list[Any]:
        s = pod_summary(obj)
        return [
            obj["metadata"]["name"], s.ready, s.status, s.restarts, age_of(obj),
            _first_pod_ip(obj) or "<none>",
            dig(obj, "spec", "nodeName", default="") or "<none>",
            dig(obj, "status", "nominatedNodeName", default="") or "<none>",
            readiness_gates_cell(obj),
        ]


# ---------------------------------------------------------------- ephemeral containers
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_EPHEMERAL_FORBIDDEN = "cannot be set for an Ephemeral Container"
# the EphemeralContainerCommon fields upstream's allow list rejects, in declaration order
_EPHEMERAL_DISALLOWED = ("ports", "resources", "resizePolicy", "restartPolicy", "restartPolicyRules",
                         "livenessProbe", "readinessProbe", "startupProbe", "lifecycle")


def _validate_pod_spec(pod: Obj) -> list[Cause]:
    spec = pod.get("spec") or {}
    return podspec.validate_pod_spec(spec, "spec", is_pod=True) + validate_ephemeral_containers(spec)


def _is_set(value: Any) -> bool:
    """A Go field that is not its zero value (nil, empty struct or list, "")."""
    return value is not None and value != {} and value != [] and value != ""


def validate_ephemeral_containers(spec: Obj, path: str = "spec.ephemeralContainers") -> list[Cause]:
    """upstream validateEphemeralContainers: container rules, names unique across all the
    pod's containers, a target among the regular or init containers, and no fields the
    pod's own workload relies on (ports, probes, lifecycle, resources, subPath mounts)."""
    ephemeral = spec.get("ephemeralContainers") or []
    if not ephemeral:
        return []
    others = {c.get("name") for key in ("initContainers", "containers") for c in spec.get(key) or []}
    names = set(others)
    volumes = {v.get("name") for v in spec.get("volumes") or [] if v.get("name")}
    causes: list[Cause] = []
    for i, ec in enumerate(ephemeral):
        p = f"{path}[{i}]"
        if not isinstance(ec, dict):
            continue
        causes += podspec._validate_container(ec, p, names, volumes, is_pod=True)
        target = ec.get("targetContainerName")
        if target and target not in others:
            causes.append(not_found(f"{p}.targetContainerName", target))
        causes += [forbidden(f"{p}.{f}", _EPHEMERAL_FORBIDDEN) for f in _EPHEMERAL_DISALLOWED if _is_set(ec.get(f))]
        for j, m in enumerate(ec.get("volumeMounts") or []):
            for f in ("subPath", "subPathExpr"):
                if m.get(f):
                    causes.append(forbidden(f"{p}.volumeMounts[{j}].{f}", _EPHEMERAL_FORBIDDEN))
    return causes


def prepare_for_ephemeral_update(new: Obj, old: Obj) -> None:
    """upstream dropNonEphemeralContainerUpdates: the stored spec and status with the
    request's ephemeral containers (defaulted as on decode); metadata is reset by the caller."""
    import copy

    eph = (new.get("spec") or {}).get("ephemeralContainers")
    new["spec"] = copy.deepcopy(old.get("spec") or {})
    if eph:
        for c in eph:
            if isinstance(c, dict):
                podspec.default_container(c)
        new["spec"]["ephemeralContainers"] = eph
    else:
        new["spec"].pop("ephemeralContainers", None)
    if "status" in old:
        new["status"] = copy.deepcopy(old["status"])
    else:
        new.pop("status", None)


def validate_ephemeral_update(new: Obj, old: Obj) -> list[Cause]:
    """upstream ValidatePodEphemeralContainersUpdate: the pod as a whole must be valid, a
    static pod's mirror takes none, and the ephemeral containers already there may be
    neither removed nor changed (patches reorder lists, so they are matched by name)."""
    causes = _validate_pod_spec(new)
    if MIRROR_POD_ANNOTATION in (dig(old, "metadata", "annotations") or {}):
        return [forbidden("[]", "static pods do not support ephemeral containers")]
    now = {c.get("name"): c for c in dig(new, "spec", "ephemeralContainers", default=[]) or []
           if isinstance(c, dict)}
    for was in dig(old, "spec", "ephemeralContainers", default=[]) or []:
        name = was.get("name")
        cur = now.get(name)
        if cur is None:
            causes.append(forbidden("spec.ephemeralContainers",
                                    f'existing ephemeral containers "{name}" may not be removed\n'))
        elif cur != was:
            changed = sorted(k for k in set(cur) | set(was) if cur.get(k) != was.get(k))
            diff = "  core.EphemeralContainer{\n" + "".join(f"  \t{k}: changed\n" for k in changed) + "  }\n"
            causes.append(forbidden("spec.ephemeralContainers",
                                    f'existing ephemeral containers "{name}" may not be changed\n{diff}'))
    return causes


def validate_log_options(query: Any) -> list[Cause]:
    """PodLogOptions of a pods/log request (upstream ValidatePodLogOptions); a value
    that is not a number is a BadRequest before this (ValueError)."""
    from kybernetes.api.validation import forbidden, invalid

    def num(name: str) -> Optional[int]:
        raw = query.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f'{name}: invalid value "{raw}": not an integer') from None

    causes: list[Cause] = []
    tail, limit, since = num("tailLines"), num("limitBytes"), num("sinceSeconds")
    if tail is not None and tail < 0:
        causes.append(invalid("tailLines", tail, "must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(invalid("limitBytes", limit, "must be greater than 0"))
    if since is not None and query.get("sinceTime"):
        causes.append(forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since is not None and since < 1:
        causes.append(invalid("sinceSeconds", since, "must be greater than 0"))
    return causes
