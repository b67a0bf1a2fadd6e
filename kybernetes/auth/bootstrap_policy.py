"""The bootstrap RBAC policy (upstream plugin/pkg/auth/authorizer/rbac/bootstrappolicy),
its reconciliation at start-up (pkg/registry/rbac/reconciliation) and the
clusterrole-aggregation logic (pkg/controller/clusterroleaggregation).

Every object carries the label ``kubernetes.io/bootstrapping: rbac-defaults`` and the
annotation ``rbac.authorization.kubernetes.io/autoupdate: "true"``; rule lists are
sorted as upstream's rule builder sorts them.  Objects are plain dicts in their JSON
form (apiVersion rbac.authorization.k8s.io/v1).

Start-up (upstream's rbac/bootstrap-roles post-start hook)::

    plan = reconcile(existing_objects, desired_objects())
    # create plan.create, update plan.update (compare-and-swap on resourceVersion),
    # delete+create plan.recreate; plan.skipped are protected (autoupdate=false).

Aggregation (the clusterrole-aggregation controller)::

    for name, rules in aggregation_updates(all_cluster_roles).items():
        # write `rules` into ClusterRole `name` (it has an aggregationRule)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from .escalation import covers
from .rbac import RBAC_GROUP, normalize_rule

__all__ = [
    "AUTOUPDATE_ANNOTATION",
    "BOOTSTRAP_LABEL",
    "cluster_roles",
    "cluster_role_bindings",
    "controller_roles",
    "controller_role_bindings",
    "namespace_roles",
    "namespace_role_bindings",
    "desired_objects",
    "kubelet_bootstrap_bindings",
    "node_rules",
    "ReconcileResult",
    "ReconcilePlan",
    "reconcile_role",
    "reconcile_binding",
    "reconcile",
    "aggregate",
    "aggregation_updates",
]

AUTOUPDATE_ANNOTATION = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
API_VERSION = f"{RBAC_GROUP}/v1"

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
READ_WRITE = READ + WRITE
READ_UPDATE = ("get", "list", "watch", "update", "patch")

CORE = ""
APPS = "apps"
AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"
AUTOSCALING = "autoscaling"
BATCH = "batch"
CERTS = "certificates.k8s.io"
COORDINATION = "coordination.k8s.io"
DISCOVERY = "discovery.k8s.io"
EXTENSIONS = "extensions"
POLICY = "policy"
STORAGE = "storage.k8s.io"
NETWORKING = "networking.k8s.io"
EVENTS = "events.k8s.io"
NODE = "node.k8s.io"
ADMISSIONREGISTRATION = "admissionregistration.k8s.io"
METRICS = "metrics.k8s.io"
CUSTOM_METRICS = "custom.metrics.k8s.io"
EXTERNAL_METRICS = "external.metrics.k8s.io"

AGG_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
AGG_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
AGG_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"

CONTROLLER_PREFIX = "system:controller:"


# ---------------------------------------------------------------------------
# builders


def rule(verbs: Iterable[str], groups: Iterable[str], resources: Iterable[str], names: Iterable[str] = ()) -> dict:
    """A resource PolicyRule, lists sorted (as upstream's PolicyRuleBuilder)."""
    r = {"verbs": sorted(set(verbs)), "apiGroups": sorted(set(groups)), "resources": sorted(set(resources))}
    names = sorted(set(names))
    if names:
        r["resourceNames"] = names
    return r


def url_rule(verbs: Iterable[str], urls: Iterable[str]) -> dict:
    return {"verbs": sorted(set(verbs)), "nonResourceURLs": sorted(set(urls))}


def events_rule() -> dict:
    return rule(("create", "update", "patch"), (CORE, EVENTS), ("events",))


def _metadata(name: str, namespace: str = "", labels: Optional[Mapping[str, str]] = None) -> dict:
    md: dict = {"name": name}
    if namespace:
        md["namespace"] = namespace
    lab = dict(labels or {})
    lab[BOOTSTRAP_LABEL[0]] = BOOTSTRAP_LABEL[1]
    md["labels"] = lab
    md["annotations"] = {AUTOUPDATE_ANNOTATION: "true"}
    return md


def _cluster_role(name: str, rules: Iterable[dict] = (), *, labels=None, aggregate_from: Optional[str] = None) -> dict:
    obj: dict = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _metadata(name, labels=labels)}
    if aggregate_from is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
        obj["rules"] = list(rules)
    else:
        obj["rules"] = list(rules)
    return obj


def _role(namespace: str, name: str, rules: Iterable[dict]) -> dict:
    return {"apiVersion": API_VERSION, "kind": "Role", "metadata": _metadata(name, namespace), "rules": list(rules)}


def _user(name: str) -> dict:
    return {"kind": "User", "apiGroup": RBAC_GROUP, "name": name}


def _group(name: str) -> dict:
    return {"kind": "Group", "apiGroup": RBAC_GROUP, "name": name}


def _sa(namespace: str, name: str) -> dict:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _cluster_binding(role: str, subjects: Iterable[dict] = (), name: Optional[str] = None) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(name or role),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": list(subjects),
    }


def _binding(namespace: str, role: str, subjects: Iterable[dict], name: Optional[str] = None) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "RoleBinding",
        "metadata": _metadata(name or role, namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
        "subjects": list(subjects),
    }


# ---------------------------------------------------------------------------
# the policy


def node_rules() -> list[dict]:
    """The rules of system:node (what a kubelet needs; the Node authorizer and the
    NodeRestriction admission plugin narrow them to the node's own objects)."""
    return [
        rule(("create",), (AUTHN,), ("tokenreviews",)),
        rule(("create",), (AUTHZ,), ("subjectaccessreviews", "localsubjectaccessreviews")),
        rule(READ, (CORE,), ("services",)),
        rule(("create", "get", "list", "watch"), (CORE,), ("nodes",)),
        rule(("update", "patch"), (CORE,), ("nodes/status",)),
        rule(("update", "patch"), (CORE,), ("nodes",)),
        rule(("create", "update", "patch"), (CORE,), ("events",)),
        rule(READ, (CORE,), ("pods",)),
        rule(("create", "delete"), (CORE,), ("pods",)),
        rule(("update", "patch"), (CORE,), ("pods/status",)),
        rule(("create",), (CORE,), ("pods/eviction",)),
        rule(("get", "list", "watch"), (CORE,), ("secrets", "configmaps")),
        rule(("get",), (CORE,), ("persistentvolumeclaims", "persistentvolumes")),
        rule(("get",), (CORE,), ("endpoints",)),
        rule(("create", "get", "list", "watch"), (CERTS,), ("certificatesigningrequests",)),
        rule(("get", "create", "update", "patch", "delete"), (COORDINATION,), ("leases",)),
        rule(("get",), (STORAGE,), ("volumeattachments",)),
        rule(("create",), (CORE,), ("serviceaccounts/token",)),
        rule(("get", "update", "patch"), (CORE,), ("persistentvolumeclaims/status",)),
        rule(("get", "watch", "list"), (STORAGE,), ("csidrivers",)),
        rule(("get", "create", "update", "patch", "delete"), (STORAGE,), ("csinodes",)),
        rule(("get", "list", "watch"), (NODE,), ("runtimeclasses",)),
    ]


def cluster_roles() -> list[dict]:
    """The bootstrap ClusterRoles other than the per-controller ones."""
    return [
        # a "root" role which can do absolutely anything
        _cluster_role("cluster-admin", [rule(("*",), ("*",), ("*",)), url_rule(("*",), ("*",))]),
        # enough to tell whether the server is ready and to discover API versions
        _cluster_role(
            "system:discovery",
            [
                url_rule(
                    ("get",),
                    (
                        "/livez", "/readyz", "/healthz",
                        "/version", "/version/",
                        "/openapi", "/openapi/*",
                        "/api", "/api/*",
                        "/apis", "/apis/*",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:monitoring",
            [
                url_rule(
                    ("get",),
                    ("/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"),
                )
            ],
        ),
        # what any user may learn about themselves
        _cluster_role(
            "system:basic-user",
            [
                rule(("create",), (AUTHZ,), ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                rule(("create",), (AUTHN,), ("selfsubjectreviews",)),
            ],
        ),
        # insensitive cluster information
        _cluster_role(
            "system:public-info-viewer",
            [url_rule(("get",), ("/livez", "/readyz", "/healthz", "/version", "/version/"))],
        ),
        # namespace admin: edit plus the power to grant permissions to others
        _cluster_role("admin", aggregate_from=AGG_ADMIN),
        # namespace editor: every user-level action, no privileged resources
        _cluster_role("edit", labels={AGG_ADMIN: "true"}, aggregate_from=AGG_EDIT),
        # namespace viewer: read-only access to non-escalating resources
        _cluster_role("view", labels={AGG_EDIT: "true"}, aggregate_from=AGG_VIEW),
        _cluster_role(
            "system:aggregate-to-admin",
            [
                rule(("create",), (AUTHZ,), ("localsubjectaccessreviews",)),
                rule(READ_WRITE, (RBAC_GROUP,), ("roles", "rolebindings")),
            ],
            labels={AGG_ADMIN: "true"},
        ),
        _cluster_role(
            "system:aggregate-to-edit",
            [
                # read on escalating resources
                rule(READ, (CORE,), ("pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy")),
                rule(("impersonate",), (CORE,), ("serviceaccounts",)),
                rule(WRITE, (CORE,), ("pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward")),
                rule(("create",), (CORE,), ("pods/eviction",)),
                rule(
                    WRITE,
                    (CORE,),
                    (
                        "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                        "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events",
                    ),
                ),
                rule(("create",), (CORE,), ("serviceaccounts/token",)),
                rule(
                    WRITE,
                    (APPS,),
                    (
                        "statefulsets", "statefulsets/scale",
                        "daemonsets",
                        "deployments", "deployments/scale", "deployments/rollback",
                        "replicasets", "replicasets/scale",
                    ),
                ),
                rule(WRITE, (AUTOSCALING,), ("horizontalpodautoscalers",)),
                rule(WRITE, (BATCH,), ("jobs", "cronjobs")),
                rule(
                    WRITE,
                    (EXTENSIONS,),
                    (
                        "daemonsets", "deployments", "deployments/scale", "deployments/rollback", "ingresses",
                        "replicasets", "replicasets/scale", "replicationcontrollers/scale", "networkpolicies",
                    ),
                ),
                rule(WRITE, (POLICY,), ("poddisruptionbudgets",)),
                rule(WRITE, (NETWORKING,), ("networkpolicies", "ingresses")),
            ],
            labels={AGG_EDIT: "true"},
        ),
        _cluster_role(
            "system:aggregate-to-view",
            [
                rule(
                    READ,
                    (CORE,),
                    (
                        "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                        "services", "services/status", "endpoints", "persistentvolumeclaims",
                        "persistentvolumeclaims/status", "configmaps",
                    ),
                ),
                rule(
                    READ,
                    (CORE,),
                    (
                        "limitranges", "resourcequotas", "bindings", "events", "pods/status",
                        "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log",
                    ),
                ),
                # read access to namespaces at the namespace scope means you can read *this* namespace
                rule(READ, (CORE,), ("namespaces",)),
                rule(READ, (DISCOVERY,), ("endpointslices",)),
                rule(
                    READ,
                    (APPS,),
                    (
                        "controllerrevisions",
                        "statefulsets", "statefulsets/status", "statefulsets/scale",
                        "daemonsets", "daemonsets/status",
                        "deployments", "deployments/status", "deployments/scale",
                        "replicasets", "replicasets/status", "replicasets/scale",
                    ),
                ),
                rule(READ, (AUTOSCALING,), ("horizontalpodautoscalers", "horizontalpodautoscalers/status")),
                rule(READ, (BATCH,), ("jobs", "cronjobs", "cronjobs/status", "jobs/status")),
                rule(
                    READ,
                    (EXTENSIONS,),
                    (
                        "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
                        "ingresses", "ingresses/status", "replicasets", "replicasets/scale", "replicasets/status",
                        "replicationcontrollers/scale", "networkpolicies",
                    ),
                ),
                rule(READ, (POLICY,), ("poddisruptionbudgets", "poddisruptionbudgets/status")),
                rule(READ, (NETWORKING,), ("networkpolicies", "ingresses", "ingresses/status")),
            ],
            labels={AGG_VIEW: "true"},
        ),
        _cluster_role(
            "system:heapster",
            [rule(READ, (CORE,), ("events", "pods", "nodes", "namespaces")), rule(READ, (EXTENSIONS,), ("deployments",))],
        ),
        _cluster_role("system:node", node_rules()),
        _cluster_role(
            "system:node-problem-detector",
            [rule(("get",), (CORE,), ("nodes",)), rule(("patch",), (CORE,), ("nodes/status",)), events_rule()],
        ),
        _cluster_role(
            "system:kubelet-api-admin",
            [
                rule(READ, (CORE,), ("nodes",)),
                rule(("proxy",), (CORE,), ("nodes",)),
                rule(("*",), (CORE,), ("nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log")),
            ],
        ),
        _cluster_role(
            "system:node-bootstrapper",
            [rule(("create", "get", "list", "watch"), (CERTS,), ("certificatesigningrequests",))],
        ),
        _cluster_role(
            "system:auth-delegator",
            [rule(("create",), (AUTHN,), ("tokenreviews",)), rule(("create",), (AUTHZ,), ("subjectaccessreviews",))],
        ),
        _cluster_role("system:kube-aggregator", [rule(READ, (CORE,), ("services", "endpoints"))]),
        _cluster_role(
            "system:kube-controller-manager",
            [
                events_rule(),
                # leader election
                rule(("create",), (COORDINATION,), ("leases",)),
                rule(("get", "update"), (COORDINATION,), ("leases",), ("kube-controller-manager",)),
                # the identities of the other controllers
                rule(("create",), (CORE,), ("secrets", "serviceaccounts")),
                rule(("delete",), (CORE,), ("secrets",)),
                rule(("get",), (CORE,), ("namespaces", "secrets", "serviceaccounts", "configmaps")),
                rule(("update",), (CORE,), ("secrets", "serviceaccounts")),
                # checking API access (non-mutating)
                rule(("create",), (AUTHN,), ("tokenreviews",)),
                rule(("create",), (AUTHZ,), ("subjectaccessreviews",)),
                # every shared informer
                rule(("list", "watch"), ("*",), ("*",)),
                rule(("create",), (CORE,), ("serviceaccounts/token",)),
            ],
        ),
        _cluster_role("system:kube-dns", [rule(("list", "watch"), (CORE,), ("endpoints", "services"))]),
        _cluster_role(
            "system:persistent-volume-provisioner",
            [
                rule(("get", "list", "watch", "create", "delete"), (CORE,), ("persistentvolumes",)),
                rule(("get", "list", "watch", "update"), (CORE,), ("persistentvolumeclaims",)),
                rule(READ, (STORAGE,), ("storageclasses",)),
                rule(("watch",), (CORE,), ("events",)),
                events_rule(),
            ],
        ),
        _cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [rule(("create",), (CERTS,), ("certificatesigningrequests/nodeclient",))],
        ),
        _cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [rule(("create",), (CERTS,), ("certificatesigningrequests/selfnodeclient",))],
        ),
        _cluster_role(
            "system:volume-scheduler",
            [
                rule(READ_UPDATE, (CORE,), ("persistentvolumes",)),
                rule(READ, (STORAGE,), ("storageclasses",)),
                rule(READ_UPDATE, (CORE,), ("persistentvolumeclaims",)),
            ],
        ),
        _cluster_role(
            "system:certificates.k8s.io:legacy-unknown-approver",
            [rule(("approve",), (CERTS,), ("signers",), ("kubernetes.io/legacy-unknown",))],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kubelet-serving-approver",
            [rule(("approve",), (CERTS,), ("signers",), ("kubernetes.io/kubelet-serving",))],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            [rule(("approve",), (CERTS,), ("signers",), ("kubernetes.io/kube-apiserver-client",))],
        ),
        _cluster_role(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            [rule(("approve",), (CERTS,), ("signers",), ("kubernetes.io/kube-apiserver-client-kubelet",))],
        ),
        _cluster_role(
            "system:service-account-issuer-discovery",
            [
                url_rule(
                    ("get",),
                    (
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ),
                )
            ],
        ),
        _cluster_role(
            "system:node-proxier",
            [
                rule(("list", "watch"), (CORE,), ("services", "endpoints")),
                rule(READ, (CORE,), ("nodes",)),
                events_rule(),
                rule(("list", "watch"), (DISCOVERY,), ("endpointslices",)),
            ],
        ),
        _cluster_role(
            "system:kube-scheduler",
            [
                events_rule(),
                # leader election
                rule(("create",), (COORDINATION,), ("leases",)),
                rule(("get", "update"), (COORDINATION,), ("leases",), ("kube-scheduler",)),
                # fundamental resources
                rule(READ, (CORE,), ("nodes",)),
                rule(("get", "list", "watch", "delete"), (CORE,), ("pods",)),
                rule(("create",), (CORE,), ("pods/binding", "bindings")),
                rule(("patch", "update"), (CORE,), ("pods/status",)),
                # things that select pods
                rule(READ, (CORE,), ("services", "replicationcontrollers")),
                rule(READ, (APPS, EXTENSIONS), ("replicasets",)),
                rule(READ, (APPS,), ("statefulsets",)),
                # things that pods use or that apply to them
                rule(READ, (POLICY,), ("poddisruptionbudgets",)),
                rule(READ, (CORE,), ("persistentvolumeclaims", "persistentvolumes")),
                # volume limits
                rule(READ, (STORAGE,), ("csinodes",)),
                # namespaceSelector in pod affinity
                rule(READ, (CORE,), ("namespaces",)),
                rule(READ, (STORAGE,), ("csidrivers",)),
                rule(READ, (STORAGE,), ("csistoragecapacities",)),
            ],
        ),
    ]


def cluster_role_bindings() -> list[dict]:
    """The bootstrap ClusterRoleBindings other than the per-controller ones."""
    return [
        _cluster_binding("cluster-admin", [_group("system:masters")]),
        _cluster_binding("system:monitoring", [_group("system:monitoring")]),
        _cluster_binding("system:discovery", [_group("system:authenticated")]),
        _cluster_binding("system:basic-user", [_group("system:authenticated")]),
        _cluster_binding("system:public-info-viewer", [_group("system:authenticated"), _group("system:unauthenticated")]),
        _cluster_binding("system:node-proxier", [_user("system:kube-proxy")]),
        _cluster_binding("system:kube-controller-manager", [_user("system:kube-controller-manager")]),
        _cluster_binding("system:kube-dns", [_sa("kube-system", "kube-dns")]),
        _cluster_binding("system:kube-scheduler", [_user("system:kube-scheduler")]),
        _cluster_binding("system:volume-scheduler", [_user("system:kube-scheduler")]),
        # nodes are authorized by the Node authorizer; the binding is kept with no subjects
        _cluster_binding("system:node", []),
        _cluster_binding("system:service-account-issuer-discovery", [_group("system:serviceaccounts")]),
    ]


def _controller_specs() -> list[tuple[str, list[dict]]]:
    ev = events_rule()
    return [
        (
            "attachdetach-controller",
            [
                rule(("list", "watch"), (CORE,), ("persistentvolumes", "persistentvolumeclaims")),
                rule(READ, (CORE,), ("nodes",)),
                rule(("patch", "update"), (CORE,), ("nodes/status",)),
                rule(("list", "watch"), (CORE,), ("pods",)),
                ev,
                rule(("get", "create", "delete", "list", "watch"), (STORAGE,), ("volumeattachments",)),
                rule(READ, (STORAGE,), ("csidrivers",)),
                rule(READ, (STORAGE,), ("csinodes",)),
            ],
        ),
        (
            "clusterrole-aggregation-controller",
            # must be able to mutate ClusterRoles in any way
            [rule(("escalate", "get", "list", "watch", "update", "patch"), (RBAC_GROUP,), ("clusterroles",))],
        ),
        (
            "cronjob-controller",
            [
                rule(("get", "list", "watch", "update"), (BATCH,), ("cronjobs",)),
                rule(("get", "list", "watch", "create", "update", "delete", "patch"), (BATCH,), ("jobs",)),
                rule(("update",), (BATCH,), ("cronjobs/status",)),
                rule(("update",), (BATCH,), ("cronjobs/finalizers",)),
                rule(("list", "delete"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "daemon-set-controller",
            [
                rule(READ, (EXTENSIONS, APPS), ("daemonsets",)),
                rule(("update",), (EXTENSIONS, APPS), ("daemonsets/status",)),
                rule(("update",), (EXTENSIONS, APPS), ("daemonsets/finalizers",)),
                rule(("list", "watch"), (CORE,), ("nodes",)),
                rule(("list", "watch", "create", "delete", "patch"), (CORE,), ("pods",)),
                rule(("create",), (CORE,), ("pods/binding",)),
                rule(("get", "list", "watch", "create", "delete", "update", "patch"), (APPS,), ("controllerrevisions",)),
                ev,
            ],
        ),
        (
            "deployment-controller",
            [
                rule(("get", "list", "watch", "update"), (EXTENSIONS, APPS), ("deployments",)),
                rule(("update",), (EXTENSIONS, APPS), ("deployments/status",)),
                rule(("update",), (EXTENSIONS, APPS), ("deployments/finalizers",)),
                rule(("get", "list", "watch", "create", "update", "patch", "delete"), (APPS, EXTENSIONS), ("replicasets",)),
                rule(("get", "list", "watch", "update"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "disruption-controller",
            [
                rule(READ, (EXTENSIONS, APPS), ("deployments",)),
                rule(READ, (APPS, EXTENSIONS), ("replicasets",)),
                rule(READ, (CORE,), ("replicationcontrollers",)),
                rule(READ, (POLICY,), ("poddisruptionbudgets",)),
                rule(READ, (APPS,), ("statefulsets",)),
                rule(("update",), (POLICY,), ("poddisruptionbudgets/status",)),
                rule(("patch", "update"), (CORE,), ("pods/status",)),
                rule(("get",), ("*",), ("*/scale",)),
                ev,
            ],
        ),
        (
            "endpoint-controller",
            [
                rule(READ, (CORE,), ("services", "pods")),
                rule(("get", "list", "create", "update", "delete"), (CORE,), ("endpoints",)),
                rule(("create",), (CORE,), ("endpoints/restricted",)),
                ev,
            ],
        ),
        (
            "endpointslice-controller",
            [
                rule(READ, (CORE,), ("services", "pods", "nodes")),
                # to own EndpointSlices with blockOwnerDeletion
                rule(("update",), (CORE,), ("services/finalizers",)),
                rule(("get", "list", "create", "update", "delete"), (DISCOVERY,), ("endpointslices",)),
                ev,
            ],
        ),
        (
            "endpointslicemirroring-controller",
            [
                rule(READ, (CORE,), ("services", "endpoints")),
                rule(("update",), (CORE,), ("services/finalizers",)),
                rule(("update",), (CORE,), ("endpoints/finalizers",)),
                rule(("get", "list", "create", "update", "delete"), (DISCOVERY,), ("endpointslices",)),
                ev,
            ],
        ),
        (
            "expand-controller",
            [
                rule(("get", "list", "watch", "update", "patch"), (CORE,), ("persistentvolumes",)),
                rule(("update", "patch"), (CORE,), ("persistentvolumeclaims/status",)),
                rule(READ, (CORE,), ("persistentvolumeclaims",)),
                rule(READ, (STORAGE,), ("storageclasses",)),
                rule(("get",), (CORE,), ("services", "endpoints")),
                rule(("get",), (CORE,), ("secrets",)),
                ev,
            ],
        ),
        (
            "ephemeral-volume-controller",
            [
                rule(READ, (CORE,), ("pods",)),
                rule(("update",), (CORE,), ("pods/finalizers",)),
                rule(("get", "list", "watch", "create"), (CORE,), ("persistentvolumeclaims",)),
                ev,
            ],
        ),
        (
            "generic-garbage-collector",
            # list/watch, selective gets and updates against any resource
            [rule(("get", "list", "watch", "patch", "update", "delete"), ("*",), ("*",)), ev],
        ),
        (
            "horizontal-pod-autoscaler",
            [
                rule(READ, (AUTOSCALING,), ("horizontalpodautoscalers",)),
                rule(("update",), (AUTOSCALING,), ("horizontalpodautoscalers/status",)),
                rule(("get", "update"), ("*",), ("*/scale",)),
                rule(("list",), (CORE,), ("pods",)),
                rule(("list",), (METRICS,), ("pods",)),
                rule(("get", "list"), (CUSTOM_METRICS,), ("*",)),
                rule(("get", "list"), (EXTERNAL_METRICS,), ("*",)),
                ev,
            ],
        ),
        (
            "job-controller",
            [
                rule(("get", "list", "watch", "update", "patch"), (BATCH,), ("jobs",)),
                rule(("update",), (BATCH,), ("jobs/status",)),
                rule(("update",), (BATCH,), ("jobs/finalizers",)),
                rule(("list", "watch", "create", "delete", "patch"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "namespace-controller",
            [
                rule(("get", "list", "watch", "delete"), (CORE,), ("namespaces",)),
                rule(("update",), (CORE,), ("namespaces/finalize", "namespaces/status")),
                rule(("get", "list", "delete", "deletecollection"), ("*",), ("*",)),
            ],
        ),
        (
            "node-controller",
            [
                rule(("get", "list", "update", "delete", "patch"), (CORE,), ("nodes",)),
                rule(("patch", "update"), (CORE,), ("nodes/status",)),
                # pod deletion
                rule(("patch", "update"), (CORE,), ("pods/status",)),
                rule(("list", "get", "delete"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "persistent-volume-binder",
            [
                rule(("get", "list", "watch", "update", "create", "delete"), (CORE,), ("persistentvolumes",)),
                rule(("update",), (CORE,), ("persistentvolumes/status",)),
                rule(("get", "list", "watch", "update"), (CORE,), ("persistentvolumeclaims",)),
                rule(("update",), (CORE,), ("persistentvolumeclaims/status",)),
                rule(("list", "watch", "get", "create", "delete"), (CORE,), ("pods",)),
                rule(READ, (STORAGE,), ("storageclasses",)),
                rule(("get", "create", "update", "delete"), (CORE,), ("endpoints",)),
                rule(("get", "create", "delete"), (CORE,), ("services",)),
                rule(("get",), (CORE,), ("secrets",)),
                rule(("get", "list"), (CORE,), ("nodes",)),
                # the recycler watches its pod's events
                rule(("watch",), (CORE,), ("events",)),
                ev,
            ],
        ),
        (
            "pod-garbage-collector",
            [
                rule(("list", "watch", "delete"), (CORE,), ("pods",)),
                rule(("get", "list"), (CORE,), ("nodes",)),
                rule(("patch",), (CORE,), ("pods/status",)),
            ],
        ),
        (
            "replicaset-controller",
            [
                rule(("get", "list", "watch", "update"), (APPS, EXTENSIONS), ("replicasets",)),
                rule(("update",), (APPS, EXTENSIONS), ("replicasets/status",)),
                rule(("update",), (APPS, EXTENSIONS), ("replicasets/finalizers",)),
                rule(("list", "watch", "patch", "create", "delete"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "replication-controller",
            [
                rule(("get", "list", "watch", "update"), (CORE,), ("replicationcontrollers",)),
                rule(("update",), (CORE,), ("replicationcontrollers/status",)),
                rule(("update",), (CORE,), ("replicationcontrollers/finalizers",)),
                rule(("list", "watch", "patch", "create", "delete"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        (
            "resourcequota-controller",
            # quota counts anything, so it needs full viewing powers
            [
                rule(("list", "watch"), ("*",), ("*",)),
                rule(("update",), (CORE,), ("resourcequotas/status",)),
                ev,
            ],
        ),
        (
            "route-controller",
            [rule(("list", "watch"), (CORE,), ("nodes",)), rule(("patch",), (CORE,), ("nodes/status",)), ev],
        ),
        ("service-account-controller", [rule(("create",), (CORE,), ("serviceaccounts",)), ev]),
        (
            "service-controller",
            [
                rule(READ, (CORE,), ("services",)),
                rule(("patch", "update"), (CORE,), ("services/status",)),
                rule(("list", "watch"), (CORE,), ("nodes",)),
                ev,
            ],
        ),
        (
            "service-cidrs-controller",
            [
                rule(("get", "list", "watch", "patch", "update"), (NETWORKING,), ("servicecidrs",)),
                rule(("patch", "update"), (NETWORKING,), ("servicecidrs/finalizers",)),
                rule(("patch", "update"), (NETWORKING,), ("servicecidrs/status",)),
                rule(READ, (NETWORKING,), ("ipaddresses",)),
                ev,
            ],
        ),
        (
            "statefulset-controller",
            [
                rule(("list", "watch"), (CORE,), ("pods",)),
                rule(READ, (APPS,), ("statefulsets",)),
                rule(("update",), (APPS,), ("statefulsets/status",)),
                rule(("update",), (APPS,), ("statefulsets/finalizers",)),
                rule(("get", "create", "delete", "update", "patch"), (CORE,), ("pods",)),
                rule(("get", "create", "delete", "update", "patch", "list", "watch"), (APPS,), ("controllerrevisions",)),
                rule(("get", "create", "list", "watch"), (CORE,), ("persistentvolumeclaims",)),
                rule(("update", "delete"), (CORE,), ("persistentvolumeclaims",)),
                rule(("update",), (CORE,), ("pods/finalizers",)),
                ev,
            ],
        ),
        ("ttl-controller", [rule(("update", "patch", "list", "watch"), (CORE,), ("nodes",)), ev]),
        (
            "certificate-controller",
            [
                rule(("get", "list", "watch", "delete"), (CERTS,), ("certificatesigningrequests",)),
                rule(("update",), (CERTS,), ("certificatesigningrequests/status", "certificatesigningrequests/approval")),
                rule(("approve",), (CERTS,), ("signers",), ("kubernetes.io/kube-apiserver-client-kubelet",)),
                rule(
                    ("sign",),
                    (CERTS,),
                    ("signers",),
                    (
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ),
                ),
                rule(("create",), (AUTHZ,), ("subjectaccessreviews",)),
                ev,
            ],
        ),
        (
            "pvc-protection-controller",
            [
                rule(("get", "list", "watch", "update"), (CORE,), ("persistentvolumeclaims",)),
                rule(("list", "watch", "get"), (CORE,), ("pods",)),
                ev,
            ],
        ),
        ("pv-protection-controller", [rule(("get", "list", "watch", "update"), (CORE,), ("persistentvolumes",)), ev]),
        (
            "volumeattributesclass-protection-controller",
            [
                rule(("list", "watch", "get"), (CORE,), ("persistentvolumeclaims",)),
                rule(("list", "watch", "get"), (CORE,), ("persistentvolumes",)),
                rule(("get", "list", "watch", "update"), (STORAGE,), ("volumeattributesclasses",)),
                ev,
            ],
        ),
        ("ttl-after-finished-controller", [rule(("get", "list", "watch", "delete"), (BATCH,), ("jobs",)), ev]),
        ("root-ca-cert-publisher", [rule(("create", "update"), (CORE,), ("configmaps",)), ev]),
        (
            "validatingadmissionpolicy-status-controller",
            [
                rule(READ, (ADMISSIONREGISTRATION,), ("validatingadmissionpolicies",)),
                rule(("get", "patch", "update"), (ADMISSIONREGISTRATION,), ("validatingadmissionpolicies/status",)),
                ev,
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            [
                rule(("get",), (CORE,), ("configmaps",), ("kube-apiserver-legacy-service-account-token-tracking",)),
                rule(("patch", "delete"), (CORE,), ("secrets",)),
            ],
        ),
    ]


def controller_roles() -> list[dict]:
    """ClusterRoles ``system:controller:<name>`` for the controllers (each runs as the
    service account kube-system/<name>)."""
    return [_cluster_role(CONTROLLER_PREFIX + name, rules) for name, rules in _controller_specs()]


def controller_role_bindings() -> list[dict]:
    return [
        _cluster_binding(CONTROLLER_PREFIX + name, [_sa("kube-system", name)]) for name, _ in _controller_specs()
    ]


def namespace_roles() -> dict[str, list[dict]]:
    """Roles upstream creates in kube-system and kube-public."""
    ev = events_rule()
    return {
        "kube-system": [
            _role(
                "kube-system",
                "extension-apiserver-authentication-reader",
                [rule(READ, (CORE,), ("configmaps",), ("extension-apiserver-authentication",))],
            ),
            _role("kube-system", "system:controller:bootstrap-signer", [rule(READ, (CORE,), ("secrets",))]),
            _role(
                "kube-system",
                "system:controller:cloud-provider",
                [rule(("create", "get", "list", "watch"), (CORE,), ("configmaps",))],
            ),
            _role(
                "kube-system",
                "system:controller:token-cleaner",
                [rule(("delete", "get", "list", "watch"), (CORE,), ("secrets",)), ev],
            ),
            _role(
                "kube-system",
                "system::leader-locking-kube-controller-manager",
                [
                    rule(("watch",), (CORE,), ("configmaps",)),
                    rule(("get", "update"), (CORE,), ("configmaps",), ("kube-controller-manager",)),
                ],
            ),
            _role(
                "kube-system",
                "system::leader-locking-kube-scheduler",
                [
                    rule(("watch",), (CORE,), ("configmaps",)),
                    rule(("get", "update"), (CORE,), ("configmaps",), ("kube-scheduler",)),
                ],
            ),
        ],
        "kube-public": [
            _role(
                "kube-public",
                "system:controller:bootstrap-signer",
                [
                    rule(READ, (CORE,), ("configmaps",)),
                    rule(("update",), (CORE,), ("configmaps",), ("cluster-info",)),
                    ev,
                ],
            ),
        ],
    }


def namespace_role_bindings() -> dict[str, list[dict]]:
    return {
        "kube-system": [
            _binding(
                "kube-system",
                "system::leader-locking-kube-controller-manager",
                [_user("system:kube-controller-manager"), _sa("kube-system", "kube-controller-manager")],
            ),
            _binding(
                "kube-system",
                "system::leader-locking-kube-scheduler",
                [_user("system:kube-scheduler"), _sa("kube-system", "kube-scheduler")],
            ),
            _binding(
                "kube-system",
                "extension-apiserver-authentication-reader",
                [_user("system:kube-controller-manager"), _user("system:kube-scheduler")],
                name="system::extension-apiserver-authentication-reader",
            ),
            _binding("kube-system", "system:controller:bootstrap-signer", [_sa("kube-system", "bootstrap-signer")]),
            _binding("kube-system", "system:controller:cloud-provider", [_sa("kube-system", "cloud-provider")]),
            _binding("kube-system", "system:controller:token-cleaner", [_sa("kube-system", "token-cleaner")]),
        ],
        "kube-public": [
            _binding("kube-public", "system:controller:bootstrap-signer", [_sa("kube-system", "bootstrap-signer")]),
        ],
    }


def kubelet_bootstrap_bindings(group: str = "system:bootstrappers:kyb:default-node-token") -> list[dict]:
    """The ClusterRoleBindings that let bootstrap-token holders (``group``, the token's
    auth-extra-groups) request node client certificates and have them auto-approved,
    and nodes renew their own — what kubeadm creates for ``kubeadm join`` (not part of
    the upstream bootstrap policy; no autoupdate annotation)."""
    out = [
        _cluster_binding("system:node-bootstrapper", [_group(group)], name="kyb:kubelet-bootstrap"),
        _cluster_binding(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            [_group(group)],
            name="kyb:node-autoapprove-bootstrap",
        ),
        _cluster_binding(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            [_group("system:nodes")],
            name="kyb:node-autoapprove-certificate-rotation",
        ),
    ]
    for o in out:
        o["metadata"].pop("annotations")
    return out


def desired_objects() -> list[dict]:
    """Everything the bootstrap policy creates, in creation order: ClusterRoles, then
    ClusterRoleBindings, then namespaced Roles and RoleBindings (their namespaces,
    kube-system and kube-public, must exist first)."""
    out: list[dict] = []
    out.extend(cluster_roles())
    out.extend(controller_roles())
    out.extend(cluster_role_bindings())
    out.extend(controller_role_bindings())
    for roles in namespace_roles().values():
        out.extend(roles)
    for bindings in namespace_role_bindings().values():
        out.extend(bindings)
    return out


# ---------------------------------------------------------------------------
# reconciliation (auto-update of the bootstrap policy)


NONE, CREATE, UPDATE, RECREATE = "none", "create", "update", "recreate"


@dataclass
class ReconcileResult:
    operation: str  # none | create | update | recreate
    obj: dict  # what to write (for none: the existing object)
    protected: bool = False  # autoupdate=false: do not write an update/recreate
    missing_rules: list = field(default_factory=list)
    extra_rules: list = field(default_factory=list)
    missing_subjects: list = field(default_factory=list)
    extra_subjects: list = field(default_factory=list)

    @property
    def skip(self) -> bool:
        return self.protected and self.operation in (UPDATE, RECREATE)


def _merge_maps(expected: Optional[Mapping], existing: Optional[Mapping]) -> dict:
    """Expected keys added, existing values win."""
    out = dict(expected or {})
    out.update(existing or {})
    return out


def _protected(obj: Mapping[str, Any]) -> bool:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE_ANNOTATION) == "false"


def _merge_metadata(result: dict, existing: Mapping, expected: Mapping) -> bool:
    md = result.setdefault("metadata", {})
    emd = expected.get("metadata") or {}
    xmd = existing.get("metadata") or {}
    changed = False
    ann = _merge_maps(emd.get("annotations"), xmd.get("annotations"))
    if ann != (xmd.get("annotations") or {}):
        md["annotations"] = ann
        changed = True
    labels = _merge_maps(emd.get("labels"), xmd.get("labels"))
    if labels != (xmd.get("labels") or {}):
        md["labels"] = labels
        changed = True
    return changed


def _selectors(ar: Optional[Mapping]) -> Optional[list]:
    if ar is None:
        return None
    return list(ar.get("clusterRoleSelectors") or [])


def _norm_selector(sel: Mapping) -> dict:
    out = {}
    if sel.get("matchLabels"):
        out["matchLabels"] = dict(sel["matchLabels"])
    if sel.get("matchExpressions"):
        out["matchExpressions"] = [
            {k: v for k, v in e.items() if v not in (None, [])} for e in sel["matchExpressions"]
        ]
    return out


def reconcile_role(existing: Optional[Mapping], expected: Mapping, remove_extra: bool = False) -> ReconcileResult:
    """Reconcile one Role or ClusterRole (upstream computeReconciledRole): add missing
    labels, annotations, rules and aggregation selectors (or, with remove_extra, reset
    them to the expected ones)."""
    if existing is None:
        return ReconcileResult(CREATE, copy.deepcopy(dict(expected)))
    result = copy.deepcopy(dict(existing))
    res = ReconcileResult(NONE, result, protected=_protected(existing))
    if _merge_metadata(result, existing, expected):
        res.operation = UPDATE

    existing_rules = [normalize_rule(r) for r in existing.get("rules") or []]
    expected_rules = [normalize_rule(r) for r in expected.get("rules") or []]
    exp_ar = expected.get("aggregationRule")
    cur_ar = existing.get("aggregationRule")
    if existing_rules != expected_rules:  # equal lists cover each other (the common, cheap case)
        if exp_ar is None or cur_ar is None:
            _, res.extra_rules = covers(expected_rules, existing_rules)
        _, res.missing_rules = covers(existing_rules, expected_rules)
    if not remove_extra and res.missing_rules:
        result["rules"] = list(result.get("rules") or []) + res.missing_rules
        res.operation = UPDATE
    elif remove_extra and (res.missing_rules or res.extra_rules):
        result["rules"] = copy.deepcopy(list(expected.get("rules") or []))
        res.operation = UPDATE

    cur_sel = _selectors(cur_ar)
    exp_sel = _selectors(exp_ar)
    missing_sel: list = []
    extra_sel: list = []
    if cur_sel is None and exp_sel is not None:
        missing_sel = exp_sel
    elif cur_sel is not None and exp_sel is None:
        extra_sel = cur_sel
    elif cur_sel is not None and exp_sel is not None:
        have = [_norm_selector(s) for s in cur_sel]
        missing_sel = [s for s in exp_sel if _norm_selector(s) not in have]
    if exp_ar is None and cur_ar is not None:
        result.pop("aggregationRule", None)
        res.operation = UPDATE
    elif not remove_extra and missing_sel:
        ar = dict(result.get("aggregationRule") or {})
        ar["clusterRoleSelectors"] = list(ar.get("clusterRoleSelectors") or []) + copy.deepcopy(missing_sel)
        result["aggregationRule"] = ar
        res.operation = UPDATE
    elif remove_extra and (missing_sel or extra_sel):
        result["aggregationRule"] = copy.deepcopy(exp_ar)
        res.operation = UPDATE
    return res


def _subject_key(s: Mapping[str, Any]) -> tuple:
    return (s.get("kind") or "", s.get("apiGroup") or "", s.get("name") or "", s.get("namespace") or "")


def reconcile_binding(existing: Optional[Mapping], expected: Mapping, remove_extra: bool = False) -> ReconcileResult:
    """Reconcile one RoleBinding or ClusterRoleBinding (upstream
    computeReconciledRoleBinding): a different roleRef means delete and recreate;
    otherwise add missing labels, annotations and subjects."""
    if existing is None:
        return ReconcileResult(CREATE, copy.deepcopy(dict(expected)))
    protected = _protected(existing)

    def ref(o):
        r = o.get("roleRef") or {}
        return (r.get("apiGroup") or "", r.get("kind") or "", r.get("name") or "")

    if ref(existing) != ref(expected):
        return ReconcileResult(RECREATE, copy.deepcopy(dict(expected)), protected=protected)
    result = copy.deepcopy(dict(existing))
    res = ReconcileResult(NONE, result, protected=protected)
    if _merge_metadata(result, existing, expected):
        res.operation = UPDATE
    have = [_subject_key(s) for s in existing.get("subjects") or []]
    want = [_subject_key(s) for s in expected.get("subjects") or []]
    res.missing_subjects = [s for s in expected.get("subjects") or [] if _subject_key(s) not in have]
    res.extra_subjects = [s for s in existing.get("subjects") or [] if _subject_key(s) not in want]
    if not remove_extra and res.missing_subjects:
        result["subjects"] = list(result.get("subjects") or []) + copy.deepcopy(res.missing_subjects)
        res.operation = UPDATE
    elif remove_extra and (res.missing_subjects or res.extra_subjects):
        result["subjects"] = copy.deepcopy(list(expected.get("subjects") or []))
        res.operation = UPDATE
    return res


@dataclass
class ReconcilePlan:
    create: list = field(default_factory=list)
    update: list = field(default_factory=list)  # existing objects modified (resourceVersion kept)
    recreate: list = field(default_factory=list)  # delete the existing one, create this
    skipped: list = field(default_factory=list)  # protected (autoupdate=false) objects left alone
    results: dict = field(default_factory=dict)  # (kind, namespace, name) -> ReconcileResult


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    md = obj.get("metadata") or {}
    return (obj.get("kind") or "", md.get("namespace") or "", md.get("name") or "")


def reconcile(existing: Iterable[Mapping[str, Any]], desired: Iterable[Mapping[str, Any]]) -> ReconcilePlan:
    """What to write so the cluster holds the desired policy, as upstream's
    bootstrap-roles hook: missing objects are created; existing ones gain missing rules,
    subjects, selectors, labels and annotations (nothing is removed); bindings whose
    roleRef differs are recreated; objects annotated autoupdate=false are left alone.
    ``existing`` may hold any RBAC objects; only those the policy names are looked at."""
    current = {_key(o): o for o in existing}
    plan = ReconcilePlan()
    for want in desired:
        k = _key(want)
        have = current.get(k)
        if k[0] in ("Role", "ClusterRole"):
            res = reconcile_role(have, want)
        else:
            res = reconcile_binding(have, want)
        plan.results[k] = res
        if res.operation == NONE:
            continue
        if res.skip:
            plan.skipped.append(res.obj)
        elif res.operation == CREATE:
            plan.create.append(res.obj)
        elif res.operation == UPDATE:
            plan.update.append(res.obj)
        else:
            plan.recreate.append(res.obj)
    return plan


# ---------------------------------------------------------------------------
# aggregation


def _semantic_rule(r: Mapping[str, Any]) -> tuple:
    n = normalize_rule(r)
    return tuple(tuple(n[k]) for k in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"))


def _compiled_selectors(role: Mapping[str, Any]) -> list:
    from kybernetes.api.selectors import SelectorError, from_label_selector

    out = []
    for sel in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            out.append(from_label_selector(sel))
        except SelectorError:
            continue
    return out


def aggregate(cluster_roles: Iterable[Mapping[str, Any]], max_rounds: int = 16) -> dict[str, list[dict]]:
    """The rules of every ClusterRole with an aggregationRule, as the
    clusterrole-aggregation controller converges to them: for each selector in order,
    the rules of the matching ClusterRoles (by name, itself excluded), duplicates
    dropped.  Chains (view -> edit -> admin) are followed to a fixed point."""
    roles = {((r.get("metadata") or {}).get("name") or ""): r for r in cluster_roles}
    current: dict[str, list[dict]] = {
        name: [normalize_rule(x) for x in r.get("rules") or []] for name, r in roles.items()
    }
    aggregated = {name: _compiled_selectors(r) for name, r in roles.items() if r.get("aggregationRule") is not None}
    names_sorted = sorted(roles)
    for _ in range(max_rounds):
        changed = False
        for name, selectors in aggregated.items():
            new_rules: list[dict] = []
            seen: set = set()
            for sel in selectors:
                for other in names_sorted:
                    if other == name:
                        continue
                    if not sel.matches((roles[other].get("metadata") or {}).get("labels") or {}):
                        continue
                    for r in current[other]:
                        key = _semantic_rule(r)
                        if key in seen:
                            continue
                        seen.add(key)
                        new_rules.append(r)
            if [_semantic_rule(r) for r in new_rules] != [_semantic_rule(r) for r in current[name]]:
                current[name] = new_rules
                changed = True
        if not changed:
            break
    return {name: [_compact_out(r) for r in current[name]] for name in aggregated}


def _compact_out(r: Mapping[str, Any]) -> dict:
    """A PolicyRule as the API shows it (empty lists omitted, verbs always present)."""
    out: dict = {"verbs": list(r.get("verbs") or [])}
    for k in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
        if r.get(k):
            out[k] = list(r[k])
    return out


def aggregation_updates(cluster_roles: Iterable[Mapping[str, Any]]) -> dict[str, list[dict]]:
    """Only the aggregated ClusterRoles whose stored rules differ from what aggregation
    gives (what the controller must write)."""
    roles = list(cluster_roles)
    by_name = {((r.get("metadata") or {}).get("name") or ""): r for r in roles}
    out = {}
    for name, rules in aggregate(roles).items():
        have = [_semantic_rule(r) for r in by_name[name].get("rules") or []]
        if have != [_semantic_rule(r) for r in rules]:
            out[name] = rules
    return out
