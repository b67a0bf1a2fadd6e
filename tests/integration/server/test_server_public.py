"""What `kyb server` answers without credentials: health, version, and 403 for the API."""

from __future__ import annotations

import ssl

import aiohttp
import orjson
import pytest


@pytest.fixture
async def anon(kyb):
    """A session that trusts the cluster CA but presents no client certificate."""
    ctx = ssl.create_default_context(cafile=str(kyb.data_dir / "tls" / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        yield s


@pytest.fixture
async def admin(kyb):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=kyb.ssl_context())) as s:
        yield s


@pytest.mark.parametrize("path", ["/readyz", "/livez", "/healthz"])
async def test_health_endpoints_answer_ok_anonymously(kyb, anon, path):
    async with anon.get(kyb.url + path) as r:
        assert r.status == 200
        assert await r.text() == "ok"


async def test_readyz_verbose(kyb, anon):
    async with anon.get(kyb.url + "/readyz", params={"verbose": "1"}) as r:
        assert r.status == 200
        text = await r.text()
    assert text.rstrip().endswith("readyz check passed")
    assert all(line.startswith("[+]") for line in text.splitlines()[:-1] if line.strip())


async def test_version(kyb, anon):
    async with anon.get(kyb.url + "/version") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        v = orjson.loads(await r.read())
    assert v["major"] == "1" and v["minor"] == "37"
    assert v["gitVersion"].startswith("v1.37.")
    for k in ("gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
        assert isinstance(v.get(k), str) and v[k], k


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/namespaces/default/configmaps"),
    ("GET", "/api/v1/namespaces"),
    ("GET", "/apis/apps/v1/deployments"),
    ("POST", "/api/v1/namespaces/default/configmaps"),
    ("DELETE", "/api/v1/namespaces/default"),
])
async def test_anonymous_resource_requests_are_forbidden(kyb, anon, admin, method, path):
    body = None
    if method == "POST":
        body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    async with anon.request(method, kyb.url + path, data=body,
                            headers={"Content-Type": "application/json"} if body else None) as r:
        assert r.status == 403
        st = orjson.loads(await r.read())
    assert st["kind"] == "Status" and st["apiVersion"] == "v1"
    assert st["status"] == "Failure" and st["reason"] == "Forbidden" and st["code"] == 403
    assert 'User "system:anonymous"' in st["message"]
    # and nothing happened
    async with admin.get(kyb.url + "/api/v1/namespaces/default/configmaps/x") as r:
        assert r.status == 404
    async with admin.get(kyb.url + "/api/v1/namespaces/default") as r:
        ns = orjson.loads(await r.read())
        assert r.status == 200 and "deletionTimestamp" not in ns["metadata"]


@pytest.mark.parametrize("path,message", [
    pytest.param("/api/v1/namespaces/default/configmaps",
                 'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" '
                 'in API group "" in the namespace "default"'),
    ("/api/v1/namespaces",
     'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
     'in API group "" at the cluster scope'),
    pytest.param("/apis/apps/v1/namespaces/default/deployments/web",
                 'deployments.apps "web" is forbidden: User "system:anonymous" cannot get resource "deployments" '
                 'in API group "apps" in the namespace "default"'),
    ("/apis", 'forbidden: User "system:anonymous" cannot get path "/apis"'),
])
async def test_anonymous_forbidden_message_is_upstreams(kyb, anon, path, message):
    async with anon.get(kyb.url + path) as r:
        assert r.status == 403
        st = orjson.loads(await r.read())
    assert st["reason"] == "Forbidden"
    assert st["message"] == message
