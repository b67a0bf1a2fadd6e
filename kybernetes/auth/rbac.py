"""RBAC authorization (rbac.authorization.k8s.io/v1), as upstream's
plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation.

Semantics (all as upstream):

- A ClusterRoleBinding grants its role's rules everywhere; a RoleBinding grants them in
  its own namespace only, whether it refers to a Role (of that namespace) or a
  ClusterRole.  Cluster-scoped requests only see ClusterRoleBindings.
- Subjects: ``User`` matches the user name, ``Group`` any of the user's groups,
  ``ServiceAccount`` the user ``system:serviceaccount:<ns>:<name>`` (in a RoleBinding a
  subject without namespace means the binding's namespace; in a ClusterRoleBinding it
  matches nothing).  The groups ``system:serviceaccounts[:<ns>]`` are ordinary groups
  the service-account authenticator puts on the user.
- A rule allows a resource request when verb, API group, resource and name match:
  ``*`` matches anything; the resource is ``resource`` or ``resource/subresource`` and
  ``*/subresource`` matches that subresource of every resource; a rule with
  resourceNames only matches requests naming one of them — so never list, watch,
  create or deletecollection, which carry no name.  Non-resource requests match
  ``nonResourceURLs`` exactly, with ``*``, or by prefix when the URL ends in ``*``.
- Allowed: ``RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "g"``.
  Not allowed: no opinion; the reason lists what could not be resolved, e.g.
  ``RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found``.

Efficiency: the four collections come from an ``RBACSource``; bindings are indexed by
subject (user / service-account user name, group) and rules compiled to sets once per
source revision, and the rules that apply to one (user, groups, namespace) are
memoised until the revision moves.  A request then costs a revision check, a dict
lookup and a scan of the user's own rules.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Mapping, Optional, Protocol, Sequence

from .authorizer import Attributes, Decision, RulesResult, aggregate_errors, go_quote

__all__ = [
    "RBAC_GROUP",
    "RBACSource",
    "InMemoryRBACSource",
    "WatchCacheRBACSource",
    "rbac_source_from_objects",
    "RBACAuthorizer",
    "RoleRefError",
    "CompiledRule",
    "rule_allows",
    "normalize_rule",
    "service_account_username",
    "split_service_account_username",
    "service_account_groups",
]

RBAC_GROUP = "rbac.authorization.k8s.io"
SA_USER_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_USER_PREFIX}{namespace}:{name}"


def split_service_account_username(username: str) -> Optional[tuple[str, str]]:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``, or None."""
    if not username.startswith(SA_USER_PREFIX):
        return None
    parts = username[len(SA_USER_PREFIX):].split(":")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def service_account_groups(namespace: str) -> tuple[str, str]:
    return (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{namespace}")


# ---------------------------------------------------------------------------
# rules


_RULE_KEYS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")


def normalize_rule(rule: Mapping[str, Any]) -> dict:
    """A PolicyRule with every list present (missing/None -> [])."""
    return {k: list(rule.get(k) or []) for k in _RULE_KEYS}


class CompiledRule:
    """A PolicyRule as sets, for fast matching."""

    __slots__ = (
        "rule",
        "all_verbs",
        "verbs",
        "all_groups",
        "groups",
        "all_resources",
        "resources",
        "names",
        "all_urls",
        "urls",
        "url_prefixes",
    )

    def __init__(self, rule: Mapping[str, Any]) -> None:
        r = normalize_rule(rule)
        self.rule = r
        self.verbs = frozenset(r["verbs"])
        self.all_verbs = "*" in self.verbs
        self.groups = frozenset(r["apiGroups"])
        self.all_groups = "*" in self.groups
        self.resources = frozenset(r["resources"])
        self.all_resources = "*" in self.resources
        self.names = frozenset(r["resourceNames"]) if r["resourceNames"] else None
        urls = r["nonResourceURLs"]
        self.all_urls = "*" in urls
        self.urls = frozenset(urls)
        self.url_prefixes = tuple(u.rstrip("*") for u in urls if u.endswith("*"))

    def allows(self, a: Attributes) -> bool:
        if not (self.all_verbs or a.verb in self.verbs):
            return False
        if a.is_resource_request:
            if not (self.all_groups or a.api_group in self.groups):
                return False
            if not self.all_resources:
                if a.subresource:
                    if (
                        f"{a.resource}/{a.subresource}" not in self.resources
                        and f"*/{a.subresource}" not in self.resources
                    ):
                        return False
                elif a.resource not in self.resources:
                    return False
            return self.names is None or a.name in self.names
        if self.all_urls or a.path in self.urls:
            return True
        path = a.path
        return any(path.startswith(p) for p in self.url_prefixes)


def rule_allows(attrs: Attributes, rule: Mapping[str, Any]) -> bool:
    """Whether one PolicyRule allows the request (upstream RuleAllows)."""
    return CompiledRule(rule).allows(attrs)


# ---------------------------------------------------------------------------
# where the objects come from


class RBACSource(Protocol):
    """The current Roles, RoleBindings, ClusterRoles and ClusterRoleBindings (as dicts).

    ``revision()`` (plain or async) must change whenever any of the four collections
    changes; the authorizer rebuilds its indexes only then."""

    def revision(self) -> Hashable: ...

    async def roles(self) -> Iterable[Mapping[str, Any]]: ...

    async def role_bindings(self) -> Iterable[Mapping[str, Any]]: ...

    async def cluster_roles(self) -> Iterable[Mapping[str, Any]]: ...

    async def cluster_role_bindings(self) -> Iterable[Mapping[str, Any]]: ...


class InMemoryRBACSource:
    """A source over plain lists (tests, bootstrapping, tools).  Mutate through
    ``set``/``add``/``remove`` so the revision moves."""

    KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self._items: dict[str, dict[tuple[str, str], Mapping[str, Any]]] = {k: {} for k in self.KINDS}
        self._rev = 0
        for o in objects:
            self.add(o)

    def revision(self) -> int:
        return self._rev

    def add(self, obj: Mapping[str, Any]) -> None:
        kind = obj.get("kind")
        if kind not in self._items:
            raise ValueError(f"not an RBAC object kind: {kind!r}")
        md = obj.get("metadata") or {}
        self._items[kind][(md.get("namespace") or "", md.get("name") or "")] = obj
        self._rev += 1

    set = add

    def remove(self, kind: str, name: str, namespace: str = "") -> None:
        self._items[kind].pop((namespace, name), None)
        self._rev += 1

    async def roles(self):
        return list(self._items["Role"].values())

    async def role_bindings(self):
        return list(self._items["RoleBinding"].values())

    async def cluster_roles(self):
        return list(self._items["ClusterRole"].values())

    async def cluster_role_bindings(self):
        return list(self._items["ClusterRoleBinding"].values())


class WatchCacheRBACSource:
    """A source over the API server's watch caches.

    ``caches`` maps "roles", "rolebindings", "clusterroles", "clusterrolebindings" to
    objects with ``.revision`` and ``.list()`` (a ListResult of KeyValues), i.e.
    kybernetes.storage.watchcache.WatchCache; ``decode`` turns a KeyValue into a dict
    (``ObjectStore.decode``).

    A cache's ``revision`` may move without its content changing (progress
    notifications), so the revision reported here is a content fingerprint per cache —
    (number of keys, newest mod revision) — recomputed only when the cache's own
    revision moves.  That pair changes on every create, update and delete: a write
    raises the newest mod revision above anything seen, and a state with the same
    count whose keys all predate it can only be the same state."""

    KEYS = ("roles", "rolebindings", "clusterroles", "clusterrolebindings")

    def __init__(self, caches: Mapping[str, Any], decode: Callable[[Any], dict]) -> None:
        missing = [k for k in self.KEYS if k not in caches]
        if missing:
            raise ValueError(f"missing caches: {missing}")
        self._caches = dict(caches)
        self._decode = decode
        self._fp: dict[str, tuple[Any, tuple[int, int], list]] = {}
        self._decoded: dict[str, tuple[tuple[int, int], list]] = {}

    def _snapshot(self, key: str) -> tuple[tuple[int, int], list]:
        c = self._caches[key]
        rev = c.revision
        m = self._fp.get(key)
        if m is None or m[0] != rev:
            items = list(c.list().items)
            fp = (len(items), max((kv.mod_revision for kv in items), default=0))
            m = (rev, fp, items)
            self._fp[key] = m
        return m[1], m[2]

    def revision(self) -> tuple:
        return tuple(self._snapshot(k)[0] for k in self.KEYS)

    def _objects(self, key: str) -> list:
        fp, items = self._snapshot(key)
        d = self._decoded.get(key)
        if d is None or d[0] != fp:
            objs = []
            for kv in items:
                try:
                    objs.append(self._decode(kv))
                except Exception:  # an undecodable object grants nothing
                    continue
            d = (fp, objs)
            self._decoded[key] = d
        return d[1]

    async def roles(self):
        return self._objects("roles")

    async def role_bindings(self):
        return self._objects("rolebindings")

    async def cluster_roles(self):
        return self._objects("clusterroles")

    async def cluster_role_bindings(self):
        return self._objects("clusterrolebindings")


async def rbac_source_from_objects(objects: Any) -> WatchCacheRBACSource:
    """A WatchCacheRBACSource over an ObjectStore's caches of the four RBAC resources."""
    from kybernetes.api.catalog import default_catalog

    cat = default_catalog()
    caches = {}
    for plural in WatchCacheRBACSource.KEYS:
        strategy = cat.lookup(RBAC_GROUP, "v1", plural)
        if strategy is None:
            raise LookupError(f"{plural}.{RBAC_GROUP} is not in the resource catalog")
        caches[plural] = await objects.cache(strategy)
    return WatchCacheRBACSource(caches, objects.decode)


# ---------------------------------------------------------------------------
# the index


class RoleRefError(Exception):
    """A binding's roleRef cannot be resolved.  ``str()`` is the authorizer's wording
    (lister NotFound: ``clusterrole.rbac.authorization.k8s.io "x" not found``);
    ``resource`` (plural) and ``name`` let the registry answer 404 NotFound
    (``clusterroles.rbac.authorization.k8s.io "x" not found``)."""

    def __init__(self, message: str, resource: str = "", name: str = "") -> None:
        super().__init__(message)
        self.resource = resource
        self.name = name

    @property
    def not_found(self) -> bool:
        return bool(self.resource)

    def storage_message(self) -> str:
        if self.resource:
            return f"{self.resource}.{RBAC_GROUP} {go_quote(self.name)} not found"
        return str(self)


@dataclass(frozen=True, eq=False)
class _Binding:
    kind: str  # "ClusterRoleBinding" | "RoleBinding"
    name: str
    namespace: str
    ref_kind: str
    ref_name: str
    subjects: tuple  # of (kind, name, namespace)

    def applies(self, user: Any, groups: frozenset) -> int:
        """Index of the first subject that applies to the user, or -1 (upstream appliesTo)."""
        for i, (kind, name, ns) in enumerate(self.subjects):
            if kind == "User":
                if user.name == name:
                    return i
            elif kind == "Group":
                if name in groups:
                    return i
            elif kind == "ServiceAccount":
                sa_ns = ns or self.namespace
                if sa_ns and user.name == f"{SA_USER_PREFIX}{sa_ns}:{name}":
                    return i
        return -1

    def describe(self, subject_index: int) -> str:
        kind, name, ns = self.subjects[subject_index]
        if kind == "ServiceAccount":
            subj = f"{kind} {go_quote(name + '/' + (ns or self.namespace))}"
        else:
            subj = f"{kind} {go_quote(name)}"
        if self.kind == "ClusterRoleBinding":
            return f"ClusterRoleBinding {go_quote(self.name)} of {self.ref_kind} {go_quote(self.ref_name)} to {subj}"
        return (
            f"RoleBinding {go_quote(self.name + '/' + self.namespace)} of {self.ref_kind} "
            f"{go_quote(self.ref_name)} to {subj}"
        )


def _subjects(obj: Mapping[str, Any]) -> tuple:
    out = []
    for s in obj.get("subjects") or ():
        if not isinstance(s, Mapping):
            continue
        out.append((s.get("kind") or "", s.get("name") or "", s.get("namespace") or ""))
    return tuple(out)


class _Index:
    def __init__(self, roles, role_bindings, cluster_roles, cluster_role_bindings) -> None:
        self.cluster_roles: dict[str, tuple[CompiledRule, ...]] = {}
        for cr in cluster_roles:
            md = cr.get("metadata") or {}
            self.cluster_roles[md.get("name") or ""] = tuple(CompiledRule(r) for r in cr.get("rules") or ())
        self.roles: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
        for r in roles:
            md = r.get("metadata") or {}
            self.roles[(md.get("namespace") or "", md.get("name") or "")] = tuple(
                CompiledRule(x) for x in r.get("rules") or ()
            )
        # subject -> bindings.  Users and service-account user names share one map.
        self.crb_users: dict[str, list[_Binding]] = {}
        self.crb_groups: dict[str, list[_Binding]] = {}
        self.rb_users: dict[str, dict[str, list[_Binding]]] = {}
        self.rb_groups: dict[str, dict[str, list[_Binding]]] = {}
        for b in cluster_role_bindings:
            self._add(self._binding("ClusterRoleBinding", b), self.crb_users, self.crb_groups)
        for b in role_bindings:
            binding = self._binding("RoleBinding", b)
            if not binding.namespace:
                continue
            self._add(
                binding,
                self.rb_users.setdefault(binding.namespace, {}),
                self.rb_groups.setdefault(binding.namespace, {}),
            )

    @staticmethod
    def _binding(kind: str, obj: Mapping[str, Any]) -> _Binding:
        md = obj.get("metadata") or {}
        ref = obj.get("roleRef") or {}
        return _Binding(
            kind,
            md.get("name") or "",
            (md.get("namespace") or "") if kind == "RoleBinding" else "",
            ref.get("kind") or "",
            ref.get("name") or "",
            _subjects(obj),
        )

    @staticmethod
    def _add(b: _Binding, users: dict, groups: dict) -> None:
        for kind, name, ns in b.subjects:
            if kind == "User":
                key, target = name, users
            elif kind == "Group":
                key, target = name, groups
            elif kind == "ServiceAccount":
                sa_ns = ns or b.namespace
                if not sa_ns:
                    continue
                key, target = f"{SA_USER_PREFIX}{sa_ns}:{name}", users
            else:
                continue
            lst = target.setdefault(key, [])
            if not lst or lst[-1] is not b:
                lst.append(b)

    def role_ref_rules(self, ref_kind: str, ref_name: str, namespace: str) -> tuple[CompiledRule, ...]:
        if ref_kind == "Role":
            rules = self.roles.get((namespace, ref_name))
            if rules is None:
                raise RoleRefError(f"role.{RBAC_GROUP} {go_quote(ref_name)} not found", "roles", ref_name)
            return rules
        if ref_kind == "ClusterRole":
            rules = self.cluster_roles.get(ref_name)
            if rules is None:
                raise RoleRefError(
                    f"clusterrole.{RBAC_GROUP} {go_quote(ref_name)} not found", "clusterroles", ref_name
                )
            return rules
        raise RoleRefError(f"unsupported role reference kind: {go_quote(ref_kind)}")

    @staticmethod
    def _candidates(users: dict, groups: dict, user: Any) -> list[_Binding]:
        found: dict[int, _Binding] = {}
        for b in users.get(user.name, ()):
            found[id(b)] = b
        for g in user.groups:
            for b in groups.get(g, ()):
                found[id(b)] = b
        return sorted(found.values(), key=lambda b: b.name)

    def resolve(self, user: Any, namespace: str) -> "_Resolved":
        """Every (binding, subject, rules) that applies to the user in the namespace,
        cluster-wide bindings first (upstream's visiting order), and the errors."""
        groups = frozenset(user.groups)
        grants: list[tuple[_Binding, int, tuple[CompiledRule, ...]]] = []
        errors: list[str] = []
        lists = [(self._candidates(self.crb_users, self.crb_groups, user), "")]
        if namespace:
            lists.append(
                (
                    self._candidates(self.rb_users.get(namespace, {}), self.rb_groups.get(namespace, {}), user),
                    namespace,
                )
            )
        for candidates, ns in lists:
            for b in candidates:
                i = b.applies(user, groups)
                if i < 0:
                    continue
                try:
                    rules = self.role_ref_rules(b.ref_kind, b.ref_name, ns)
                except RoleRefError as e:
                    errors.append(str(e))
                    continue
                grants.append((b, i, rules))
        return _Resolved(grants, errors)


@dataclass
class _Resolved:
    grants: list
    errors: list


# ---------------------------------------------------------------------------
# the authorizer


class RBACAuthorizer:
    """RBAC over an RBACSource.  ``await authorize(attrs)`` -> (Decision, reason)."""

    def __init__(self, source: Any, *, memo_size: int = 4096) -> None:
        self._source = source
        self._index: Optional[_Index] = None
        self._rev: Any = object()
        self._lock = asyncio.Lock()
        self._memo: "OrderedDict[tuple, _Resolved]" = OrderedDict()
        self._memo_size = memo_size
        self.rebuilds = 0  # for tests and metrics

    async def _current(self) -> _Index:
        rev = self._source.revision()
        if inspect.isawaitable(rev):
            rev = await rev
        if self._index is not None and rev == self._rev:
            return self._index
        async with self._lock:
            rev = self._source.revision()
            if inspect.isawaitable(rev):
                rev = await rev
            if self._index is None or rev != self._rev:
                src = self._source
                roles, rbs, crs, crbs = (
                    await src.roles(),
                    await src.role_bindings(),
                    await src.cluster_roles(),
                    await src.cluster_role_bindings(),
                )
                self._index = _Index(roles, rbs, crs, crbs)
                self._rev = rev
                self._memo.clear()
                self.rebuilds += 1
            return self._index

    async def _resolve(self, user: Any, namespace: str) -> _Resolved:
        index = await self._current()
        key = (user.name, tuple(user.groups), namespace)
        r = self._memo.get(key)
        if r is not None:
            self._memo.move_to_end(key)
            return r
        r = index.resolve(user, namespace)
        self._memo[key] = r
        if len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return r

    async def authorize(self, attrs: Attributes) -> tuple[Decision, str]:
        if attrs.user is None:
            return Decision.NO_OPINION, ""
        resolved = await self._resolve(attrs.user, attrs.namespace)
        for binding, subject_index, rules in resolved.grants:
            for rule in rules:
                if rule.allows(attrs):
                    return Decision.ALLOW, f"RBAC: allowed by {binding.describe(subject_index)}"
        if resolved.errors:
            return Decision.NO_OPINION, f"RBAC: {aggregate_errors(resolved.errors)}"
        return Decision.NO_OPINION, ""

    async def rules_for_user(self, user: Any, namespace: str) -> tuple[list[dict], list[str]]:
        """Every PolicyRule that applies to the user in the namespace (cluster-wide ones
        included), and the resolution errors — upstream's RuleResolver.RulesFor, used
        by escalation checks."""
        resolved = await self._resolve(user, namespace)
        rules = [dict(r.rule) for _, _, rs in resolved.grants for r in rs]
        return rules, list(resolved.errors)

    async def rules_for(self, user: Any, namespace: str) -> RulesResult:
        """For SelfSubjectRulesReview: resource and non-resource rules; RBAC never
        reports itself incomplete, unresolvable bindings become the evaluation error."""
        rules, errors = await self.rules_for_user(user, namespace)
        resource = []
        non_resource = []
        for r in rules:
            if r["resources"]:
                out = {"verbs": r["verbs"], "apiGroups": r["apiGroups"], "resources": r["resources"]}
                if r["resourceNames"]:
                    out["resourceNames"] = r["resourceNames"]
                resource.append(out)
            if r["nonResourceURLs"]:
                non_resource.append({"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]})
        return RulesResult(resource, non_resource, False, aggregate_errors(errors))

    async def role_ref_rules(self, role_ref: Mapping[str, Any], namespace: str) -> list[dict]:
        """The rules a binding's roleRef grants (upstream GetRoleReferenceRules);
        raises RoleRefError."""
        index = await self._current()
        rules = index.role_ref_rules(role_ref.get("kind") or "", role_ref.get("name") or "", namespace)
        return [dict(r.rule) for r in rules]

    def invalidate(self) -> None:
        """Forget the indexes (the next request rebuilds them)."""
        self._index = None
        self._memo.clear()


def describe_subjects(subjects: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str], list[str], list[str]]:
    """Users, groups, service accounts (ns/name) and others, for display (kubectl describe)."""
    users, groups, sas, others = [], [], [], []
    for s in subjects:
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{s.get('name') or ''}")
        elif kind == "User":
            users.append(s.get("name") or "")
        elif kind == "Group":
            groups.append(s.get("name") or "")
        else:
            others.append(f"{kind}/{s.get('namespace') or ''}/{s.get('name') or ''}")
    return users, groups, sas, others
