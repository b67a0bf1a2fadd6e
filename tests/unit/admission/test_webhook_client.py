"""Where a webhook is called: URLs, service references through Endpoints, CA bundles."""

from __future__ import annotations

import asyncio
import base64

import pytest

from kybernetes.admission.webhooks import client

SVC = {"spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}
EPS = {"subsets": [{"addresses": [{"ip": "10.0.0.7"}], "ports": [{"name": "https", "port": 8443}]}]}


def lookup(svc, eps):
    async def get(ns, name):
        return svc, eps
    return get


def resolve(cc, svc=SVC, eps=EPS):
    return asyncio.run(client.resolve(cc, lookup(svc, eps)))


def test_url_is_used_as_is():
    t = resolve({"url": "https://127.0.0.1:9443/hook", "caBundle": "Y2E="})
    assert (t.url, t.server_hostname, t.ca_bundle) == ("https://127.0.0.1:9443/hook", None, "Y2E=")


def test_service_resolves_to_an_endpoint_and_verifies_the_service_name():
    t = resolve({"service": {"namespace": "ns", "name": "hook", "port": 443, "path": "/validate"}})
    assert (t.url, t.server_hostname) == ("https://10.0.0.7:8443/validate", "hook.ns.svc")


@pytest.mark.parametrize("svc,eps,port,message", [
    (None, None, 443, 'service "hook" not found'),
    (SVC, EPS, 444, 'no service port 444 found for service "hook"'),
    ({"spec": {"type": "ExternalName", "ports": [{"port": 443}]}}, EPS, 443, 'unsupported service type "ExternalName"'),
    (SVC, None, 443, 'endpoints "hook" not found'),
    (SVC, {"subsets": [{"notReadyAddresses": [{"ip": "10.0.0.8"}], "ports": [{"name": "https", "port": 8443}]}]},
     443, "service ns/hook has no active endpoints"),
])
def test_service_resolution_failures(svc, eps, port, message):
    with pytest.raises(client.CallError) as e:
        resolve({"service": {"namespace": "ns", "name": "hook", "port": port}}, svc, eps)
    assert str(e.value) == message


def test_timeout_parameter_and_bad_bundles():
    assert client._with_timeout("https://h:1/p", 10) == "https://h:1/p?timeout=10s"
    assert client._with_timeout("https://h:1", 3) == "https://h:1/?timeout=3s"
    with pytest.raises(client.CallError) as e:
        client.ssl_context(base64.b64encode(b"not a certificate").decode())
    assert str(e.value) == "unable to load root certificates: unable to parse bytes as PEM block"


def test_go_wording_of_transport_errors():
    assert client._go_error(asyncio.TimeoutError(), "https://h:1/p?timeout=1s") == \
        'Post "https://h:1/p?timeout=1s": context deadline exceeded'
