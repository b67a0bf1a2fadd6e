"""Every strategy names a real group/version/kind and an upstream-shaped identity."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest

from kybernetes.registry import all_strategies
from kybernetes.registry.base import Strategy

ALL_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}


@cache
def schema_gvks() -> frozenset[tuple[str, str, str]]:
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.37.0-local"
    defs = json.loads((base / "_definitions.json").read_text())["$defs"]
    return frozenset(
        (g["group"], g["version"], g["kind"])
        for d in defs.values()
        for g in d.get("x-kubernetes-group-version-kind", [])
    )


STRATEGIES = all_strategies()


def _id(s: Strategy) -> str:
    return f"{s.group or 'core'}/{s.version}/{s.resource}"


def test_all_strategies_is_stable_and_cached() -> None:
    again = all_strategies()
    assert [type(s) for s in again] == [type(s) for s in STRATEGIES]
    assert all(a is b for a, b in zip(again, STRATEGIES))


@pytest.mark.parametrize("s", STRATEGIES, ids=_id)
def test_kind_exists_in_schema(s: Strategy) -> None:
    assert (s.group, s.version, s.kind) in schema_gvks()
    # create-only kinds (Binding, the reviews) have no List type
    assert (s.group, s.version, s.kind + "List") in schema_gvks() or not s.persisted


@pytest.mark.parametrize("s", STRATEGIES, ids=_id)
def test_identity_shape(s: Strategy) -> None:
    assert s.resource == s.resource.lower() and s.singular == s.kind.lower()
    assert set(s.verbs) <= ALL_VERBS
    assert s.has_status_split == ("status" in s.subresources)
    assert not set(s.subresources) & set(s.future_subresources)
    assert s.name_format in {"dns1123-subdomain", "dns1123-label", "path-segment"}


def test_resources_unique_per_group_version() -> None:
    keys = [(s.group, s.version, s.resource) for s in STRATEGIES]
    assert len(keys) == len(set(keys))


def test_short_names_unique_except_shared_events() -> None:
    seen: dict[str, str] = {}
    for s in STRATEGIES:
        for n in s.short_names:
            if n in seen:
                # core/v1 and events.k8s.io/v1 events share "ev", as upstream does
                assert n == "ev" and s.resource == "events" and seen[n] == "events"
            seen[n] = s.resource


UPSTREAM = {
    # resource: (namespaced, short names, categories)
    ("", "pods"): (True, ("po",), ("all",)),
    ("", "services"): (True, ("svc",), ("all",)),
    ("", "namespaces"): (False, ("ns",), ()),
    ("", "nodes"): (False, ("no",), ()),
    ("", "persistentvolumes"): (False, ("pv",), ()),
    ("", "persistentvolumeclaims"): (True, ("pvc",), ()),
    ("", "limitranges"): (True, ("limits",), ()),
    ("", "resourcequotas"): (True, ("quota",), ()),
    ("", "replicationcontrollers"): (True, ("rc",), ("all",)),
    ("apps", "deployments"): (True, ("deploy",), ("all",)),
    ("apps", "statefulsets"): (True, ("sts",), ("all",)),
    ("apps", "daemonsets"): (True, ("ds",), ("all",)),
    ("batch", "jobs"): (True, (), ("all",)),
    ("batch", "cronjobs"): (True, ("cj",), ("all",)),
    ("autoscaling", "horizontalpodautoscalers"): (True, ("hpa",), ("all",)),
    ("networking.k8s.io", "ipaddresses"): (False, ("ip",), ()),
    ("storage.k8s.io", "csistoragecapacities"): (True, (), ()),
    ("certificates.k8s.io", "certificatesigningrequests"): (False, ("csr",), ()),
    ("scheduling.k8s.io", "priorityclasses"): (False, ("pc",), ()),
}


@pytest.mark.parametrize("key", list(UPSTREAM), ids=lambda k: f"{k[0] or 'core'}/{k[1]}")
def test_matches_upstream_discovery(key: tuple[str, str]) -> None:
    s = next(s for s in STRATEGIES if (s.group, s.resource) == key)
    assert (s.namespaced, s.short_names, s.categories) == UPSTREAM[key]


def test_special_verbs_and_subresources() -> None:
    by = {(s.group, s.resource): s for s in STRATEGIES}
    assert "deletecollection" not in by[("", "namespaces")].verbs
    assert by[("", "bindings")].verbs == ("create",)
    assert set(by[("", "pods")].subresources) == {"status", "binding", "eviction", "log", "exec", "attach",
                                                  "portforward", "ephemeralcontainers"}
    assert "resize" in by[("", "pods")].future_subresources
    assert set(by[("", "nodes")].subresources) == {"status", "proxy"}
    assert set(by[("apps", "deployments")].subresources) == {"status", "scale"}
    assert set(by[("certificates.k8s.io", "certificatesigningrequests")].subresources) == {
        "status", "approval",
    }
    assert by[("", "serviceaccounts")].subresources == ("token",)


@pytest.mark.parametrize("s", STRATEGIES, ids=_id)
def test_name_format_is_known_to_object_meta_validation(s: Strategy) -> None:
    from kybernetes.api.validation import name_errors

    assert name_errors("a-name", s.name_format) == []


def test_kinds_whose_delete_returns_the_object() -> None:
    # upstream's stores with ReturnDeletedObject: true (pkg/registry/*/storage/storage.go)
    returning = {(s.group, s.resource) for s in STRATEGIES if s.return_deleted_object}
    assert returning == {
        ("", "pods"), ("", "namespaces"), ("", "services"), ("", "serviceaccounts"),
        ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "volumeattachments"),
        ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "csinodes"),
    }
