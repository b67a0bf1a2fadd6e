"""PodSecurity admission (upstream plugin/pkg/admission/security/podsecurity and
k8s.io/pod-security-admission/admission).

Namespaces choose a Pod Security Standard per mode with labels
``pod-security.kubernetes.io/<enforce|audit|warn>`` (privileged, baseline, restricted)
and ``...-version`` (``latest`` or ``v1.N``); unlabelled modes use the configured
defaults (privileged:latest unless an AdmissionConfiguration says otherwise).

- Pods (create, and updates that change images / seccomp annotations or add ephemeral
  containers): ``enforce`` refuses with 403 ``pods "x" is forbidden: violates
  PodSecurity "restricted:latest": ...``; ``warn`` adds a Warning header; ``audit``
  adds the ``pod-security.kubernetes.io/audit-violations`` audit annotation.
- Workload resources with a pod template (Deployments, ReplicaSets, StatefulSets,
  DaemonSets, Jobs, CronJobs, ReplicationControllers, PodTemplates) get warnings and
  audit annotations only, never a refusal.
- Namespaces: invalid policy labels are refused (422); tightening ``enforce`` warns about
  existing pods that would violate it.
- Exemptions (usernames, namespaces, runtimeClasses) skip the checks and are recorded
  as ``pod-security.kubernetes.io/exempt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.admission import podsecurity_checks as checks
from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import ObjectStore
from kybernetes.registry.base import Cause

Obj = dict[str, Any]

LABEL_PREFIX = "pod-security.kubernetes.io/"
AUDIT_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
MAX_PODS_TO_CHECK = 3000
_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")
# pod subresources PodSecurity looks at (the others cannot change the pod's security)
_POD_SUBRESOURCES = {"", "ephemeralcontainers"}


@dataclass(frozen=True)
class LevelVersion:
    level: str = checks.PRIVILEGED
    minor: Optional[int] = None  # None = latest

    def __str__(self) -> str:
        return f"{self.level}:{'latest' if self.minor is None else f'v1.{self.minor}'}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()

    def fully_privileged(self) -> bool:
        return all(lv.level == checks.PRIVILEGED for lv in (self.enforce, self.audit, self.warn))


@dataclass
class Config:
    """PodSecurityConfiguration: defaults and exemptions."""

    defaults: Policy = field(default_factory=Policy)
    exempt_usernames: frozenset = frozenset()
    exempt_namespaces: frozenset = frozenset()
    exempt_runtime_classes: frozenset = frozenset()

    @classmethod
    def from_dict(cls, cfg: Obj) -> "Config":
        """From a PodSecurityConfiguration object (pod-security.admission.config.k8s.io/v1)."""
        d = cfg.get("defaults") or {}
        modes = {}
        for mode in MODES:
            level = _parse_level(str(d.get(mode, checks.PRIVILEGED)))
            minor = _parse_version(str(d.get(f"{mode}-version", "latest")))
            if level is None or minor is False:
                raise ValueError(f"invalid PodSecurity default for {mode}: {d.get(mode)!r} {d.get(mode + '-version')!r}")
            modes[mode] = LevelVersion(level, minor)  # type: ignore[arg-type]
        ex = cfg.get("exemptions") or {}
        return cls(Policy(**modes), frozenset(ex.get("usernames") or ()), frozenset(ex.get("namespaces") or ()),
                   frozenset(ex.get("runtimeClasses") or ()))

    @classmethod
    def from_admission_config(cls, path: str) -> "Config":
        """The PodSecurity entry of an AdmissionConfiguration file (defaults if absent)."""
        import yaml

        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        for plugin in doc.get("plugins") or ():
            if plugin.get("name") == "PodSecurity":
                if plugin.get("configuration") is not None:
                    return cls.from_dict(plugin["configuration"])
                if plugin.get("path"):
                    with open(plugin["path"]) as f:
                        return cls.from_dict(yaml.safe_load(f) or {})
        return cls()


def _parse_level(v: str) -> Optional[str]:
    return v if v in checks.LEVELS else None


def _parse_version(v: str) -> Optional[int] | bool:
    """None for latest, the minor for v1.N, False when malformed."""
    if v == "latest":
        return None
    m = _VERSION.match(v)
    return int(m.group(1)) if m else False


def policy_from_labels(labels: Obj, defaults: Policy) -> tuple[Policy, list[Cause]]:
    """The namespace's policy and the label errors (upstream api.PolicyToEvaluate)."""
    errs: list[Cause] = []
    modes = {"enforce": defaults.enforce, "audit": defaults.audit, "warn": defaults.warn}
    has_level = {}
    for mode in MODES:
        lv = modes[mode]
        level_key, version_key = LABEL_PREFIX + mode, LABEL_PREFIX + mode + "-version"
        has_level[mode] = False
        if level_key in labels:
            value = str(labels[level_key])
            level = _parse_level(value)
            if level is None:
                errs.append(_label_error(level_key, value, "must be one of privileged, baseline, restricted"))
                lv = LevelVersion(checks.RESTRICTED, lv.minor)  # fail closed, as upstream
            else:
                lv = LevelVersion(level, lv.minor)
                has_level[mode] = True
        if version_key in labels:
            value = str(labels[version_key])
            minor = _parse_version(value)
            if minor is False:
                errs.append(_label_error(version_key, value, 'must be "latest" or "v1.x"'))
                lv = LevelVersion(lv.level, None)
            else:
                lv = LevelVersion(lv.level, minor)  # type: ignore[arg-type]
        modes[mode] = lv
    # warn defaults to a stricter explicitly set enforce level
    enforce, warn = modes["enforce"], modes["warn"]
    if not has_level["warn"] and has_level["enforce"] and _rank(enforce.level) > _rank(warn.level):
        minor = warn.minor if (LABEL_PREFIX + "warn-version") in labels else enforce.minor
        modes["warn"] = LevelVersion(enforce.level, minor)
    return Policy(**modes), errs


def _rank(level: str) -> int:
    return checks.LEVELS.index(level) if level in checks.LEVELS else 0


def _label_error(key: str, value: str, detail: str) -> Cause:
    from kybernetes.api.goformat import go_quote

    return Cause("FieldValueInvalid", f"metadata.labels[{key}]", f"Invalid value: {go_quote(value)}: {detail}")


def pod_template(resource: str, group: str, obj: Obj) -> Optional[tuple[Obj, Obj]]:
    """(metadata, spec) of the pod a workload object would create; None when it has none."""
    if not has_pod_template(resource, group):
        return None
    if resource == "cronjobs":
        tmpl = (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
    elif resource == "podtemplates":
        tmpl = obj.get("template")
    else:
        tmpl = (obj.get("spec") or {}).get("template")
    if not isinstance(tmpl, dict):
        return None
    spec = tmpl.get("spec")
    if not isinstance(spec, dict):
        return None
    return tmpl.get("metadata") or {}, spec


_WORKLOADS = {("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
              ("batch", "jobs"), ("batch", "cronjobs"), ("", "replicationcontrollers"), ("", "podtemplates")}


def has_pod_template(resource: str, group: str) -> bool:
    """Whether the resource carries a pod template (upstream's PodSpecExtractor)."""
    return (group, resource) in _WORKLOADS


def _significant_pod_update(new: Obj, old: Obj) -> bool:
    """Only image, seccomp-annotation and ephemeral-container changes are re-checked."""
    ann = (new.get("metadata") or {}).get("annotations") or {}
    old_ann = (old.get("metadata") or {}).get("annotations") or {}
    pod_key = "seccomp.security.alpha.kubernetes.io/pod"
    if ann.get(pod_key) != old_ann.get(pod_key):
        return True
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}

    def changed(c: Obj, oc: Obj) -> bool:
        key = "container.seccomp.security.alpha.kubernetes.io/" + str(c.get("name", ""))
        return c.get("image") != oc.get("image") or ann.get(key) != old_ann.get(key)

    for kind in ("containers", "initContainers"):
        cs, ocs = spec.get(kind) or [], old_spec.get(kind) or []
        if len(cs) != len(ocs) or any(changed(c, oc) for c, oc in zip(cs, ocs)):
            return True
    old_eph = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or ()}
    for c in spec.get("ephemeralContainers") or ():
        oc = old_eph.get(c.get("name"))
        if oc is None or changed(c, oc):
            return True
    return False


class PodSecurity:
    name = "PodSecurity"

    def __init__(self, objects: ObjectStore, config: Optional[Config] = None) -> None:
        self.objects = objects
        self.config = config or Config()

    # ------------------------------------------------------------ entry point
    async def validate(self, op: str, r: Any, new: Optional[Obj], old: Optional[Obj]) -> None:
        if op not in ("CREATE", "UPDATE") or new is None:
            return
        s = r.strategy
        if s.group == "" and s.resource == "namespaces":
            await self._namespace(op, r, new, old)
        elif s.group == "" and s.resource == "pods":
            await self._pod(op, r, new, old)
        elif has_pod_template(s.resource, s.group):
            await self._workload(r, new)

    # ------------------------------------------------------------ helpers
    def _annotate(self, r: Any, values: dict[str, str]) -> None:
        if values:
            r.http.setdefault("audit_annotations", {}).update({AUDIT_PREFIX + k: v for k, v in values.items()})

    def _exempt(self, r: Any, namespace: str) -> bool:
        """Whether the request's namespace or user is exempt (recorded as the audit annotation)."""
        if namespace in self.config.exempt_namespaces:
            self._annotate(r, {"exempt": "namespace"})
            return True
        if self._user_exempt(r):
            self._annotate(r, {"exempt": "user"})
            return True
        return False

    def _user_exempt(self, r: Any) -> bool:
        user = r.http.get("user")
        return user is not None and user.name in self.config.exempt_usernames

    async def _namespace_policy(self, namespace: str) -> tuple[Policy, list[Cause]] | None:
        ns = await lookup.get_object(self.objects, "", "v1", "namespaces", "", namespace)
        if ns is None:
            return None
        return policy_from_labels((ns.get("metadata") or {}).get("labels") or {}, self.config.defaults)

    # ------------------------------------------------------------ pods
    async def _pod(self, op: str, r: Any, new: Obj, old: Optional[Obj]) -> None:
        if lookup.subresource(r) not in _POD_SUBRESOURCES:
            return
        namespace = r.info.namespace
        if self._exempt(r, namespace):
            return
        found = await self._namespace_policy(namespace)
        if found is None:
            # upstream answers an internal error when it cannot read the namespace
            self._annotate(r, {"error": f'Internal error occurred: failed to lookup namespace "{namespace}"'})
            raise errors.internal(f'failed to lookup namespace "{namespace}"')
        policy, errs = found
        if not errs and policy.fully_privileged():
            # upstream records this fixed value whatever version the labels pin
            self._annotate(r, {"enforce-policy": "privileged:latest"})
            return
        if op == "UPDATE" and old is not None and not _significant_pod_update(new, old):
            return
        name = (new.get("metadata") or {}).get("name") or r.info.name or ""
        self._evaluate(r, policy, errs, new.get("metadata") or {}, new.get("spec") or {}, enforce_name=name)

    # ------------------------------------------------------------ workloads
    async def _workload(self, r: Any, new: Obj) -> None:
        if lookup.subresource(r):
            return
        namespace = r.info.namespace
        if self._exempt(r, namespace):
            return
        found = await self._namespace_policy(namespace)
        if found is None:
            self._annotate(r, {"error": f'failed to lookup namespace "{namespace}"'})
            return
        policy, errs = found
        if not errs and policy.warn.level == checks.PRIVILEGED and policy.audit.level == checks.PRIVILEGED:
            return
        tmpl = pod_template(r.strategy.resource, r.strategy.group, new)
        if tmpl is None:
            return
        self._evaluate(r, policy, errs, tmpl[0], tmpl[1], enforce_name=None)

    def _evaluate(self, r: Any, policy: Policy, errs: list[Cause], meta: Obj, spec: Obj,
                  enforce_name: Optional[str]) -> None:
        """enforce (pods only), then audit, then warn; one evaluation per level+version."""
        if spec.get("runtimeClassName") and spec["runtimeClassName"] in self.config.exempt_runtime_classes:
            self._annotate(r, {"exempt": "runtimeClass"})
            return
        annotations: dict[str, str] = {}
        if errs:
            agg = errs[0] if len(errs) == 1 else None
            text = (f"{agg.field}: {agg.message}" if agg else
                    "[" + ", ".join(f"{c.field}: {c.message}" for c in errs) + "]")
            annotations["error"] = f"Failed to parse policy: {text}"
        cache: dict[LevelVersion, list[checks.Result]] = {}

        def results(lv: LevelVersion) -> list[checks.Result]:
            if lv not in cache:
                cache[lv] = checks.evaluate(lv.level, lv.minor, meta, spec)
            return cache[lv]

        denied: Optional[errors.APIError] = None
        if enforce_name is not None:
            annotations["enforce-policy"] = str(policy.enforce)
            failed = results(policy.enforce)
            if failed:
                denied = errors.forbidden("pods", "", enforce_name, f'violates PodSecurity "{policy.enforce}": '
                                                                    f"{checks.forbidden_detail(failed)}")
        failed = results(policy.audit)
        if failed:
            annotations["audit-violations"] = (f'would violate PodSecurity "{policy.audit}": '
                                               f"{checks.forbidden_detail(failed)}")
        self._annotate(r, annotations)
        if denied is not None:
            raise denied
        failed = results(policy.warn)
        if failed:
            r.warnings.append(f'would violate PodSecurity "{policy.warn}": {checks.forbidden_detail(failed)}')

    # ------------------------------------------------------------ namespaces
    async def _namespace(self, op: str, r: Any, new: Obj, old: Optional[Obj]) -> None:
        if lookup.subresource(r):
            return
        name = (new.get("metadata") or {}).get("name") or r.info.name or ""
        policy, errs = policy_from_labels((new.get("metadata") or {}).get("labels") or {}, self.config.defaults)
        if op == "CREATE" or old is None:
            if errs:
                raise errors.invalid("Namespace", "", name, errs)
            if name in self.config.exempt_namespaces:
                self._annotate(r, {"exempt": "namespace"})
            return
        old_policy, old_errs = policy_from_labels((old.get("metadata") or {}).get("labels") or {},
                                                  self.config.defaults)
        if errs and (not old_errs or errs != old_errs):
            raise errors.invalid("Namespace", "", name, errs)
        new_enf, old_enf = policy.enforce, old_policy.enforce
        if new_enf == old_enf or new_enf.level == checks.PRIVILEGED:
            return
        if new_enf.minor == old_enf.minor and _rank(new_enf.level) <= _rank(old_enf.level):
            return
        if name in self.config.exempt_namespaces:
            self._annotate(r, {"exempt": "namespace"})
            return
        r.warnings.extend(await self.existing_pod_warnings(name, new_enf))

    async def existing_pod_warnings(self, namespace: str, enforce: LevelVersion) -> list[str]:
        """Warnings about the namespace's pods that the new enforce level would refuse."""
        pods = await lookup.list_objects(self.objects, "", "v1", "pods", namespace)
        total = len(pods)
        pods = _prioritize(pods)[:MAX_PODS_TO_CHECK]
        counts: dict[str, list] = {}  # reason -> [first pod name, count]
        order: list[str] = []
        for pod in pods:
            failed = checks.evaluate(enforce.level, enforce.minor, pod.get("metadata") or {}, pod.get("spec") or {})
            if not failed:
                continue
            reason = checks.forbidden_reason(failed)
            pod_name = (pod.get("metadata") or {}).get("name", "")
            if reason not in counts:
                counts[reason] = [pod_name, 0]
                order.append(reason)
            elif pod_name < counts[reason][0]:
                counts[reason][0] = pod_name
            counts[reason][1] += 1
        out = []
        if len(pods) < total:
            out.append(f"new PodSecurity enforce level only checked against the first {len(pods)} of {total} "
                       "existing pods")
        if order:
            out.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
                       f'"{enforce}"')
        decorated = []
        for reason in order:
            first, n = counts[reason]
            if n == 1:
                decorated.append(f"{first}: {reason}")
            elif n == 2:
                decorated.append(f"{first} (and 1 other pod): {reason}")
            else:
                decorated.append(f"{first} (and {n - 1} other pods): {reason}")
        return out + sorted(decorated)


def _prioritize(pods: list[Obj]) -> list[Obj]:
    """One pod per controlling owner first, then the rest (upstream prioritizePods)."""
    first, rest, seen = [], [], set()
    for pod in pods:
        owner = next((o.get("uid") for o in (pod.get("metadata") or {}).get("ownerReferences") or ()
                      if o.get("controller")), None)
        if owner is None or owner not in seen:
            if owner is not None:
                seen.add(owner)
            first.append(pod)
        else:
            rest.append(pod)
    return first + rest
