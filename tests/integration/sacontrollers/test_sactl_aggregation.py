"""Against a real `kyb server`: a ClusterRole labelled aggregate-to-view adds its rules
to `view` (and, along the upstream chain, to `edit` and `admin`); deleting it or
dropping the label takes them out again."""

from __future__ import annotations

import secrets

import yaml

from sactl_helpers import wait_object

RBAC = "rbac.authorization.k8s.io"
VIEW_LABEL = f"{RBAC}/aggregate-to-view"


def has_rule(rule: dict):
    def check(role) -> bool:
        return role is not None and rule in (role.get("rules") or [])
    return check


def lacks_rule(rule: dict):
    def check(role) -> bool:
        return role is not None and rule not in (role.get("rules") or [])
    return check


def kubectl_view_rules(kyb) -> list:
    return yaml.safe_load(kyb.kubectl("get", "clusterrole", "view", "-o", "yaml").stdout).get("rules") or []


async def test_aggregate_to_view_adds_and_removes_rules(kyb, client):
    roles = client.resource(RBAC, "v1", "clusterroles")
    group = f"widgets-{secrets.token_hex(3)}.example.com"
    rule = {"apiGroups": [group], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}
    name = f"widget-viewer-{secrets.token_hex(3)}"
    await roles.create({"metadata": {"name": name, "labels": {VIEW_LABEL: "true"}}, "rules": [rule]})
    try:
        view = await wait_object(roles, "view", has_rule(rule))
        assert view["aggregationRule"]  # still aggregated, only its rules moved
        assert rule in kubectl_view_rules(kyb)
        # view is aggregated into edit, edit into admin
        await wait_object(roles, "edit", has_rule(rule))
        await wait_object(roles, "admin", has_rule(rule))
    finally:
        await roles.delete(name)
    await wait_object(roles, "view", lacks_rule(rule))
    assert rule not in kubectl_view_rules(kyb)
    await wait_object(roles, "admin", lacks_rule(rule))


async def test_removing_the_label_removes_the_rules(kyb, client):
    roles = client.resource(RBAC, "v1", "clusterroles")
    rule = {"apiGroups": ["gadgets.example.com"], "resources": ["gadgets"], "verbs": ["get"]}
    name = f"gadget-viewer-{secrets.token_hex(3)}"
    await roles.create({"metadata": {"name": name, "labels": {VIEW_LABEL: "true"}}, "rules": [rule]})
    try:
        await wait_object(roles, "view", has_rule(rule))
        await roles.patch(name, {"metadata": {"labels": {VIEW_LABEL: None}}})
        await wait_object(roles, "view", lacks_rule(rule))
        assert rule not in kubectl_view_rules(kyb)
    finally:
        await roles.delete(name)


async def test_custom_aggregated_role_and_manual_edit_reverted(kyb, client):
    roles = client.resource(RBAC, "v1", "clusterroles")
    tag = secrets.token_hex(3)
    label = f"example.com/aggregate-to-{tag}"
    parent = f"parent-{tag}"
    r1 = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
    r2 = {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}
    await roles.create({"metadata": {"name": parent},
                        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}})
    await roles.create({"metadata": {"name": f"c1-{tag}", "labels": {label: "true"}}, "rules": [r1]})
    await roles.create({"metadata": {"name": f"c2-{tag}", "labels": {label: "true"}}, "rules": [r2]})
    try:
        got = await wait_object(roles, parent, lambda o: o is not None and sorted(
            o.get("rules") or [], key=str) == sorted([r1, r2], key=str))
        # a hand edit of an aggregated role's rules is undone
        bogus = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}
        written = await roles.update(dict(got, rules=[bogus]))
        await wait_object(roles, parent, lambda o: o is not None
                          and o["metadata"]["resourceVersion"] != written["metadata"]["resourceVersion"]
                          and bogus not in (o.get("rules") or []) and r1 in (o.get("rules") or []))
    finally:
        for n in (parent, f"c1-{tag}", f"c2-{tag}"):
            await roles.delete(n)
