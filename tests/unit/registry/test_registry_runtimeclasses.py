"""node.k8s.io/v1 RuntimeClass: validation, immutability of handler, printer row."""

from __future__ import annotations

from registry_helpers import ago

from kybernetes.api.catalog import default_catalog
from kybernetes.registry.node.runtimeclasses import RuntimeClassStrategy

S = RuntimeClassStrategy()


def rc(name: str = "gvisor", handler: str = "runsc", **extra: object) -> dict:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name, "creationTimestamp": ago(3600)}, "handler": handler, **extra}


def fields(causes) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


def test_served_cluster_scoped_with_name_handler_age_columns() -> None:
    s = default_catalog().lookup("node.k8s.io", "v1", "runtimeclasses")
    assert s is not None and s.namespaced is False and s.kind == "RuntimeClass"
    assert [c.name for c in S.columns] == ["Name", "Handler", "Age"]
    assert S.row(rc()) == ["gvisor", "runsc", "60m"]


def test_handler_required_and_a_dns_label() -> None:
    assert S.validate(rc()) == []
    assert fields(S.validate(rc(handler=""))) == [("handler", "FieldValueRequired")]
    bad = S.validate(rc(handler="Run.SC"))
    assert fields(bad) == [("handler", "FieldValueInvalid")]
    assert 'Invalid value: "Run.SC"' in bad[0].message


def test_handler_immutable_but_overhead_may_change() -> None:
    old = rc()
    causes = S.validate_update(rc(handler="runc"), old)
    assert fields(causes) == [("handler", "FieldValueInvalid")]
    assert causes[0].message == 'Invalid value: "runc": field is immutable'
    assert S.validate_update(rc(overhead={"podFixed": {"cpu": "250m"}}), old) == []


def test_overhead_and_scheduling_validation() -> None:
    assert S.validate(rc(overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}})) == []
    assert fields(S.validate(rc(overhead={"podFixed": {"cpu": "-1"}}))) == [
        ("overhead.podFixed[cpu]", "FieldValueInvalid")]
    ok = {"nodeSelector": {"sandbox": "true"}, "tolerations": [{"key": "sandbox", "operator": "Exists"}]}
    assert S.validate(rc(scheduling=ok)) == []
    dup = {"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "a", "operator": "Exists"}]}
    assert fields(S.validate(rc(scheduling=dup))) == [("scheduling.tolerations[1]", "FieldValueDuplicate")]
    badsel = {"nodeSelector": {"bad key!": "x"}}
    assert fields(S.validate(rc(scheduling=badsel))) == [("scheduling.nodeSelector", "FieldValueInvalid")]


def test_protobuf_round_trip() -> None:
    from kybernetes.api.protobuf import decode, encode

    obj = rc(overhead={"podFixed": {"cpu": "250m", "memory": "120Mi"}},
             scheduling={"nodeSelector": {"a": "b"},
                         "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]})
    obj["metadata"].pop("creationTimestamp")
    assert decode(encode(obj)) == obj
