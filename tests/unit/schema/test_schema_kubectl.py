"""The real kubectl against the OpenAPI documents, served by a tiny aiohttp stub.

The stub (test-only) serves legacy discovery, /openapi/v2, /openapi/v3 and a POST
for deployments that runs `validate_schema` the way the API server will.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import AsyncIterator

import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from kybernetes.api import openapi, validation
from kybernetes.api.openapi import ServedResource as R

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl binary not installed")

RES = [
    R("", "v1", "Pod", "pods", True, subresources=("status", "log", "exec")),
    R("", "v1", "Namespace", "namespaces", False, subresources=("status",)),
    R("", "v1", "ConfigMap", "configmaps"),
    R("", "v1", "Service", "services", subresources=("status",)),
    R("apps", "v1", "Deployment", "deployments", subresources=("status", "scale")),
]
POSTS = web.AppKey("posts", list)
SHORT = {"pods": ["po"], "namespaces": ["ns"], "configmaps": ["cm"], "services": ["svc"], "deployments": ["deploy"]}


def _resource_list(gv: str) -> dict:
    out = []
    for r in RES:
        if r.group_version != gv:
            continue
        out.append({"name": r.resource, "singularName": r.kind.lower(), "namespaced": r.namespaced, "kind": r.kind,
                    "verbs": list(r.verbs), "shortNames": SHORT.get(r.resource, [])})
        out += [{"name": f"{r.resource}/{s}", "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                 "verbs": ["get", "patch", "update"]} for s in r.subresources]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


async def _handle(req: web.Request) -> web.StreamResponse:
    p = req.path.rstrip("/") or "/"
    if p == "/api":
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": req.host}]})
    if p == "/api/v1":
        return web.json_response(_resource_list("v1"))
    if p == "/apis":
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
            "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})
    if p == "/apis/apps/v1":
        return web.json_response(_resource_list("apps/v1"))
    if p == "/openapi/v2":
        if openapi.V2_PROTOBUF_MEDIA_TYPE in req.headers.get("Accept", ""):  # what client-go asks for
            return web.Response(body=openapi.openapi_v2_protobuf(RES), content_type=openapi.V2_PROTOBUF_CONTENT_TYPE)
        return web.Response(body=openapi.openapi_v2(RES), content_type="application/json")
    if p == "/openapi/v3":
        return web.Response(body=openapi.openapi_v3_index(RES), content_type="application/json")
    if p.startswith("/openapi/v3/"):
        doc = openapi.openapi_v3_document(RES, p[len("/openapi/v3/"):])
        if doc is None:
            return _status(404, "NotFound", "not found")
        assert req.query.get("hash") == doc.hash  # kubectl follows the index's hashed URLs
        return web.Response(body=doc.body, content_type="application/json",
                            headers={"Cache-Control": "public, immutable", "ETag": doc.etag})
    if req.method == "POST" and p == "/apis/apps/v1/namespaces/default/deployments":
        req.app[POSTS].append(req.query_string)
        body = orjson.loads(await req.read())
        errors, unknown = validation.validate_schema(body, "io.k8s.api.apps.v1.Deployment",
                                                     strict_unknown=req.query.get("fieldValidation") != "Ignore")
        decode = validation.decode_errors(errors)
        if decode:
            return _status(400, "BadRequest", validation.cannot_handle_message("Deployment", "v1", decode[0].message))
        if unknown and req.query.get("fieldValidation") == "Strict":
            return _status(400, "BadRequest", validation.cannot_handle_message(
                "Deployment", "v1", validation.strict_decoding_message(unknown)))
        headers = CIMultiDict()
        for u in unknown:  # fieldValidation=Warn: one Warning header per unknown field
            headers.add("Warning", '299 - "%s"' % u.replace("\\", "\\\\").replace('"', '\\"'))
        body["metadata"]["namespace"] = "default"
        return web.json_response(body, status=201, headers=headers)
    return _status(404, "NotFound", f"{req.method} {p} not served by the stub")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    app = web.Application()
    app[POSTS] = []
    app.router.add_route("*", "/{tail:.*}", _handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


async def _kubectl(url: str, tmp: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "KUBECONFIG": os.devnull, "HOME": str(tmp)}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--server", url, "--cache-dir", str(tmp / "cache"), *args,  # type: ignore[arg-type]
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_explain_field(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, _ = server
    rc, out, err = await _kubectl(url, tmp_path, "explain", "deployment.spec.replicas")
    assert rc == 0, err
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out and "VERSION:    v1" in out
    assert "FIELD: replicas <integer>" in out
    assert "Number of desired pods. This is a pointer to distinguish between explicit" in out


async def test_explain_nested_list_and_short_name(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, _ = server
    rc, out, err = await _kubectl(url, tmp_path, "explain", "pods.spec.containers")
    assert rc == 0, err
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "image\t<string>" in out and "name\t<string> -required-" in out
    rc, out, err = await _kubectl(url, tmp_path, "explain", "deploy.spec.template.spec.containers.resources.limits")
    assert rc == 0, err
    assert "FIELD: limits <map[string]Quantity>" in out
    rc, out, err = await _kubectl(url, tmp_path, "explain", "deploy.spec.strategy.rollingUpdate")
    assert rc == 0, err
    assert "maxSurge\t<IntOrString>" in out


async def test_explain_recursive(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, _ = server
    rc, out, err = await _kubectl(url, tmp_path, "explain", "pods", "--recursive")
    assert rc == 0, err
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n")
    assert "  spec\t<PodSpec>" in out
    assert "      livenessProbe\t<Probe>" in out
    assert len(out.splitlines()) > 500
    rc, out, err = await _kubectl(url, tmp_path, "explain", "pods.spec.nope")
    assert rc != 0 and 'field "nope" does not exist' in err


async def test_explain_from_openapi_v2_protobuf(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, _ = server
    rc, out, err = await _kubectl(url, tmp_path, "explain", "deployment.spec.strategy", "--output=plaintext-openapiv2")
    assert rc == 0, err
    assert "KIND:     Deployment\nVERSION:  apps/v1\n" in out
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "rollingUpdate\t<Object>" in out


async def test_create_strict_validation_uses_server(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, app = server
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replica: 2\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
        "    spec:\n      containers:\n      - name: c\n        image: nginx\n        bogus: 1\n")
    rc, out, err = await _kubectl(url, tmp_path, "create", "-n", "default", "-f", str(manifest))
    # kubectl saw fieldValidation on the PATCH operation in /openapi/v3, so it asked the
    # server to validate strictly instead of validating on its own.
    assert rc != 0
    assert app[POSTS][-1] == "fieldManager=kubectl-create&fieldValidation=Strict"
    assert ('Error from server (BadRequest): error when creating "%s": Deployment in version "v1" cannot be handled '
            'as a Deployment: strict decoding error: unknown field "spec.replica", unknown field '
            '"spec.template.spec.containers[0].bogus"' % manifest) in err
    rc, out, err = await _kubectl(url, tmp_path, "create", "-n", "default", "-f", str(manifest), "--validate=false")
    assert rc == 0, err
    assert app[POSTS][-1] == "fieldManager=kubectl-create&fieldValidation=Ignore"
    assert "deployment.apps/web created" in out
    rc, out, err = await _kubectl(url, tmp_path, "create", "-n", "default", "-f", str(manifest), "--validate=warn")
    assert rc == 0, err
    assert 'Warning: unknown field "spec.replica"' in err
    assert 'Warning: unknown field "spec.template.spec.containers[0].bogus"' in err


async def test_create_type_error(server: tuple[str, web.Application], tmp_path: Path) -> None:
    url, _ = server
    manifest = tmp_path / "typed.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: \"3\"\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
        "    spec:\n      containers:\n      - name: c\n        image: nginx\n")
    rc, out, err = await _kubectl(url, tmp_path, "create", "-n", "default", "-f", str(manifest))
    assert rc != 0
    assert ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go '
            'struct field DeploymentSpec.spec.replicas of type int32') in err
