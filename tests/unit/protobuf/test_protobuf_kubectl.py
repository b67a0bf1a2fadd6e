"""Decode request bodies recorded from the real kubectl (see fixtures/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kybernetes.api.protobuf import decode, encode

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("kubectl_create_*.pb"))


def test_fixtures_present() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("name", CASES)
def test_kubectl_body_decodes_to_its_json_form(name: str) -> None:
    body = (FIXTURES / f"{name}.pb").read_bytes()
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert decode(body) == expected


@pytest.mark.parametrize("name", CASES)
def test_kubectl_body_survives_reencoding(name: str) -> None:
    obj = decode((FIXTURES / f"{name}.pb").read_bytes())
    assert decode(encode(obj)) == obj


def test_namespace_exact() -> None:
    obj = decode((FIXTURES / "kubectl_create_namespace.pb").read_bytes())
    # gogo writes zero-valued non-pointer fields (generation 0, "" strings, an
    # empty creationTimestamp); none of them may leak into the JSON form.
    assert obj == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"},
                   "spec": {}, "status": {}}


def test_deployment_keeps_replicas_zero() -> None:
    obj = decode((FIXTURES / "kubectl_create_deployment_replicas0.pb").read_bytes())
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"] == {}


def test_service_target_port_is_int() -> None:
    obj = decode((FIXTURES / "kubectl_create_service_clusterip.pb").read_bytes())
    assert obj["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",
                                     "targetPort": 8080}]


def test_binary_configmap() -> None:
    obj = decode((FIXTURES / "kubectl_create_configmap_binary.pb").read_bytes())
    assert obj["binaryData"] == {"blob": "AAEC//5iaW5hcnk="}
    assert obj["data"] == {"t": "text"}


def test_pdb_intstr_percent() -> None:
    obj = decode((FIXTURES / "kubectl_create_poddisruptionbudget.pb").read_bytes())
    assert obj["spec"]["minAvailable"] == "50%"
