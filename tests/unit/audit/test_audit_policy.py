"""audit.k8s.io/v1 Policy evaluation (upstream apiserver/pkg/audit/policy checker)."""

from __future__ import annotations

import pytest
import yaml

from kybernetes.apiserver.audit.policy import Attributes, PolicyError, load_policy, parse_policy

POLICY = yaml.safe_load("""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources: [{group: "", resources: ["endpoints", "services"]}]
- level: None
  userGroups: ["system:nodes"]
  verbs: ["get"]
  resources: [{group: "", resources: ["nodes"]}]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: Request
  resources: [{group: "", resources: ["pods/log", "pods/status"]}]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"], resourceNames: ["controller-leader"]}]
  omitStages: ["ResponseStarted"]
- level: Metadata
  resources: [{group: "", resources: ["secrets", "configmaps"]}]
- level: Request
  resources: [{group: "apps"}]
  namespaces: ["prod"]
- level: RequestResponse
  resources: [{group: "batch", resources: ["*/status"]}]
- level: Request
  resources: [{group: "batch", resources: ["jobs/*"]}]
  omitManagedFields: true
- level: Metadata
  resources: [{group: "rbac.authorization.k8s.io", resources: ["*"]}]
  namespaces: [""]
- level: Metadata
  nonResourceURLs: ["/apis/*"]
""")


def res(verb, resource, *, sub="", group="", ns="", name="", user="alice", groups=("system:authenticated",)):
    return Attributes(user=user, groups=groups, verb=verb, resource_request=True, namespace=ns, api_group=group,
                      resource=resource, subresource=sub, name=name)


def nonres(verb, path, user="alice", groups=("system:authenticated",)):
    return Attributes(user=user, groups=groups, verb=verb, resource_request=False, path=path)


CASES = [
    (res("watch", "endpoints", user="system:kube-proxy"), "None"),
    (res("list", "endpoints", user="system:kube-proxy"), "None"),  # falls to... no match -> None
    (res("get", "nodes", user="system:node:n1", groups=("system:nodes",)), "None"),
    (nonres("get", "/healthz"), "None"),
    (nonres("get", "/healthz/etcd"), "None"),
    (nonres("get", "/version"), "None"),
    (nonres("get", "/versionx"), "None"),           # no trailing *: exact only, then no rule -> None
    (res("get", "pods", sub="log", ns="a", name="p"), "Request"),
    (res("get", "pods", ns="a", name="p"), "None"),  # pods itself not listed
    (res("get", "configmaps", ns="kube-system", name="controller-leader"), "RequestResponse"),
    (res("get", "configmaps", ns="kube-system", name="other"), "Metadata"),
    (res("list", "secrets", ns="x"), "Metadata"),
    (res("create", "deployments", group="apps", ns="prod"), "Request"),
    (res("create", "deployments", group="apps", ns="dev"), "None"),
    (res("update", "jobs", group="batch", sub="status", ns="a", name="j"), "RequestResponse"),
    (res("update", "jobs", group="batch", ns="a", name="j"), "Request"),       # jobs/* matches jobs too
    (res("get", "cronjobs", group="batch", sub="status", ns="a", name="c"), "RequestResponse"),
    (res("get", "clusterroles", group="rbac.authorization.k8s.io"), "Metadata"),   # "" = cluster scope
    (res("get", "roles", group="rbac.authorization.k8s.io", ns="a"), "None"),
    (nonres("get", "/apis/apps"), "Metadata"),
    (nonres("get", "/api"), "None"),
]


@pytest.mark.parametrize("attrs,level", CASES)
def test_policy_table(attrs, level):
    assert parse_policy(POLICY).evaluate(attrs).level == level


def test_unauthenticated_does_not_match_user_rules():
    p = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                      "rules": [{"level": "None", "userGroups": ["system:unauthenticated"]}, {"level": "Metadata"}]})
    assert p.evaluate(Attributes(user=None, verb="get", path="/api")).level == "Metadata"
    anon = Attributes(user="system:anonymous", groups=("system:unauthenticated",), verb="get", path="/api")
    assert p.evaluate(anon).level == "None"


def test_omit_stages_union_and_managed_fields():
    p = parse_policy(POLICY)
    cfg = p.evaluate(res("get", "configmaps", ns="kube-system", name="controller-leader"))
    assert set(cfg.omit_stages) == {"RequestReceived", "ResponseStarted"}
    assert cfg.omit_managed_fields is False
    assert p.evaluate(res("update", "jobs", group="batch", ns="a", name="j")).omit_managed_fields is True
    g = dict(POLICY, omitManagedFields=True)
    g["rules"] = [dict(r) for r in POLICY["rules"]]
    g["rules"][8]["omitManagedFields"] = False
    p2 = parse_policy(g)
    assert p2.evaluate(res("list", "secrets")).omit_managed_fields is True   # global
    assert p2.evaluate(res("update", "jobs", group="batch", ns="a", name="j")).omit_managed_fields is False  # rule wins


def test_no_match_is_none():
    p = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                      "rules": [{"level": "Metadata", "verbs": ["create"]}]})
    assert p.evaluate(res("get", "pods")).level == "None"


@pytest.mark.parametrize("doc,msg", [
    ({"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy", "rules": [{"level": "None"}]}, "unknown kind"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Everything"}]}, "Unsupported value"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "omitStages": ["Done"]}]},
     "Unsupported value"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
      "rules": [{"level": "None", "nonResourceURLs": ["/a"], "resources": [{"group": ""}]}]}, "both"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "nonResourceURLs": ["/a*b"]}]},
     "final character"),
])
def test_invalid_policies(doc, msg):
    with pytest.raises(PolicyError, match=msg):
        parse_policy(doc)


def test_load_policy_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(POLICY))
    assert len(load_policy(f).rules) == len(POLICY["rules"])
    f.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    with pytest.raises(PolicyError, match="0 rules"):
        load_policy(f)
