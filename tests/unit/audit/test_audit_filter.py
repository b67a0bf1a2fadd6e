"""The audit filter in a small filter chain: stages, levels, objects, Panic, Audit-Id,
omitStages, omitManagedFields, failed authentication; plus the log backend's rotation."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kybernetes.apiserver import audit as audit_pkg
from kybernetes.apiserver.audit.backends import Backend, LogBackend, RotatingWriter
from kybernetes.apiserver.audit.events import remove_managed_fields
from kybernetes.apiserver.audit.policy import parse_policy
from kybernetes.apiserver.filters import audit, authorization, panics, requestinfo
from kybernetes.apiserver.filters.authentication import unauthorized
from kybernetes.auth.authorizer import UserInfo


class Memory(Backend):
    def __init__(self):
        super().__init__()
        self.events = []

    def process(self, event):
        self.events.append(orjson.loads(orjson.dumps(event)))
        return True


@web.middleware
async def fake_auth(request, handler):
    who = request.headers.get("X-User")
    if who == "bad":
        raise unauthorized()
    request["user"] = UserInfo(who or "alice", ("devs", "system:authenticated"), uid="u-1")
    return await handler(request)


async def authz(user, attrs):
    if user.name == "eve":
        return False, True, "eve is denied"
    return True, False, f'allowed for {user.name}'


MF = [{"manager": "kubectl", "operation": "Update"}]


async def handler(request):
    info = request["info"]
    if info.resource == "boom":
        raise RuntimeError("kaboom")
    if info.verb == "watch":
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        await resp.write(b'{"type":"ADDED","object":{}}\n')
        return resp
    if info.verb == "create":
        body = await request.json()
        body["metadata"].update(uid="uid-1", resourceVersion="7", managedFields=MF)
        return web.json_response(body, status=201)
    if info.verb == "get" and info.name == "missing":
        from kybernetes.apiserver import errors
        raise errors.not_found(info.resource, info.api_group, info.name)
    return web.json_response({"kind": "ConfigMap", "apiVersion": "v1",
                              "metadata": {"name": info.name, "managedFields": MF}, "data": {"k": "secret-ish"}})


POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
    {"level": "None", "nonResourceURLs": ["/healthz*"]},
    {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
    {"level": "Request", "resources": [{"group": "", "resources": ["configmaps"]}], "namespaces": ["req"]},
    {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}], "namespaces": ["omf"],
     "omitManagedFields": True},
    {"level": "RequestResponse", "omitStages": ["RequestReceived"], "namespaces": ["quiet"]},
    {"level": "RequestResponse"},
]}


@pytest.fixture
async def client():
    app = web.Application(middlewares=[panics.recover, requestinfo.with_request_info, fake_auth, audit.audit,
                                       authorization.authorize])
    app["authorizer"] = authz
    mem = Memory()
    audit_pkg.install(app, audit_pkg.Auditor(parse_policy(POLICY), mem))
    app.router.add_route("*", "/{tail:.*}", handler)
    c = TestClient(TestServer(app))
    await c.start_server()
    c.mem = mem
    yield c
    await c.close()


def stages(events, aid=None):
    return [e["stage"] for e in events if aid is None or e["auditID"] == aid]


async def test_create_request_response(client):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}}
    r = await client.post("/api/v1/namespaces/default/configmaps?fieldManager=x", data=orjson.dumps(body),
                          headers={"Content-Type": "application/json", "User-Agent": "t/1",
                                   "X-Forwarded-For": "10.0.0.1"})
    assert r.status == 201
    aid = r.headers["Audit-Id"]
    evs = client.mem.events
    assert stages(evs) == ["RequestReceived", "ResponseComplete"]
    rr, done = evs
    assert rr["auditID"] == done["auditID"] == aid and len(aid) == 36
    assert rr["kind"] == "Event" and rr["apiVersion"] == "audit.k8s.io/v1" and rr["level"] == "RequestResponse"
    assert rr["requestURI"] == "/api/v1/namespaces/default/configmaps?fieldManager=x"
    assert rr["verb"] == "create" and rr["userAgent"] == "t/1"
    assert rr["user"] == {"username": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"]}
    assert rr["sourceIPs"] == ["10.0.0.1", "127.0.0.1"]
    assert rr["objectRef"] == {"resource": "configmaps", "namespace": "default", "apiVersion": "v1"}
    assert "responseStatus" not in rr and "annotations" not in rr and "requestObject" not in rr
    assert rr["stageTimestamp"] == rr["requestReceivedTimestamp"]
    assert done["objectRef"]["name"] == "c1"
    assert done["responseStatus"] == {"metadata": {}, "code": 201}
    assert done["requestObject"] == body
    assert done["responseObject"]["metadata"]["managedFields"] == MF
    assert done["annotations"] == {"authorization.k8s.io/decision": "allow",
                                   "authorization.k8s.io/reason": "allowed for alice"}
    assert done["stageTimestamp"] >= done["requestReceivedTimestamp"]
    assert list(done)[:8] == ["kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user"]


async def test_levels(client):
    await client.get("/api/v1/namespaces/x/secrets/s")
    await client.get("/api/v1/namespaces/req/configmaps/c")
    await client.get("/api/v1/namespaces/omf/configmaps/c")
    meta, req, rr = [e for e in client.mem.events if e["stage"] == "ResponseComplete"]
    assert meta["level"] == "Metadata" and "requestObject" not in meta and "responseObject" not in meta
    assert "secret-ish" not in json.dumps(meta)
    assert req["level"] == "Request" and "responseObject" not in req and "requestObject" not in req  # get: no body
    assert rr["responseObject"]["data"] == {"k": "secret-ish"}
    assert "managedFields" not in rr["responseObject"]["metadata"]  # omitManagedFields


async def test_omit_stages_and_none(client):
    await client.get("/api/v1/namespaces/quiet/pods/p")
    await client.get("/healthz")
    assert stages(client.mem.events) == ["ResponseComplete"]


async def test_forbidden_and_errors(client):
    r = await client.get("/api/v1/namespaces/a/pods/p", headers={"X-User": "eve"})
    assert r.status == 403 and r.headers["Audit-Id"]
    done = client.mem.events[-1]
    assert done["auditID"] == r.headers["Audit-Id"]
    assert done["annotations"] == {"authorization.k8s.io/decision": "forbid",
                                   "authorization.k8s.io/reason": "eve is denied"}
    assert done["responseStatus"]["code"] == 403 and done["responseStatus"]["reason"] == "Forbidden"
    assert done["responseStatus"]["status"] == "Failure" and "forbidden" in done["responseStatus"]["message"]
    r = await client.get("/api/v1/namespaces/a/pods/missing")
    assert r.status == 404
    done = client.mem.events[-1]
    assert done["responseStatus"]["reason"] == "NotFound" and done["responseStatus"]["code"] == 404


async def test_panic_stage(client):
    r = await client.get("/api/v1/namespaces/a/boom/x")
    assert r.status == 500 and r.headers["Audit-Id"]
    evs = client.mem.events
    assert stages(evs) == ["RequestReceived", "Panic"]
    assert evs[-1]["responseStatus"]["code"] == 500
    assert evs[-1]["responseStatus"]["message"].startswith("APIServer panic'd: RuntimeError: kaboom")


async def test_watch_response_started(client):
    r = await client.get("/api/v1/namespaces/a/pods?watch=true")
    await r.read()
    await asyncio.sleep(0.05)
    evs = client.mem.events
    assert stages(evs) == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert evs[1]["responseStatus"]["code"] == 200 and evs[1]["auditID"] == r.headers["Audit-Id"]
    # authorization runs after RequestReceived: its decision is on every later stage
    assert "annotations" not in evs[0]
    for e in evs[1:]:
        assert e["annotations"] == {"authorization.k8s.io/decision": "allow",
                                    "authorization.k8s.io/reason": "allowed for alice"}


async def test_audit_id_from_client_and_failed_auth(client):
    r = await client.get("/api/v1/namespaces/a/pods/p", headers={"Audit-ID": "my-id"})
    assert r.headers["Audit-Id"] == "my-id" and client.mem.events[-1]["auditID"] == "my-id"
    client.mem.events.clear()
    r = await client.get("/api/v1/namespaces/a/pods/p", headers={"X-User": "bad", "Authorization": "Bearer x"})
    assert r.status == 401 and r.headers["Audit-Id"]
    (ev,) = client.mem.events
    assert ev["stage"] == "ResponseStarted" and ev["user"] == {} and ev["auditID"] == r.headers["Audit-Id"]
    assert ev["responseStatus"] == {"metadata": {}, "message": "Authentication failed, attempted: bearer",
                                    "code": 401}


def test_remove_managed_fields_in_lists():
    lst = {"kind": "List", "items": [{"metadata": {"name": "a", "managedFields": MF}}]}
    out = remove_managed_fields(lst)
    assert out["items"][0]["metadata"] == {"name": "a"}
    assert lst["items"][0]["metadata"]["managedFields"] == MF  # the original is untouched


def test_rotating_writer(tmp_path):
    w = RotatingWriter(tmp_path / "audit.log", max_size=100, max_backups=2)
    for i in range(10):
        w.write(b"x" * 60 + b"\n")
    w.close()
    backups = w.backups()
    assert len(backups) == 2 and all(p.name.startswith("audit-") and p.suffix == ".log" for p in backups)
    assert (tmp_path / "audit.log").stat().st_size == 61


async def test_log_backend_lines(tmp_path):
    b = LogBackend(str(tmp_path / "a.log"))
    for i in range(100):
        b.process({"kind": "Event", "i": i})
    await b.shutdown()
    lines = (tmp_path / "a.log").read_text().splitlines()
    assert [json.loads(x)["i"] for x in lines] == list(range(100))
    assert (tmp_path / "a.log").stat().st_mode & 0o777 == 0o600
