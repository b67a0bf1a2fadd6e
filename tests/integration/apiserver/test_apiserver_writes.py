"""Write semantics: generateName, metadata.generation, status / scale / binding
subresources, dryRun and fieldValidation, as upstream kube-apiserver behaves."""

from __future__ import annotations

import re

import pytest

from apiserver_helpers import Resp, uniq


def deployment(name: str, replicas: int = 2, labels: dict | None = None, **spec_extra) -> dict:
    sel = {"app": name}
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {"replicas": replicas, "selector": {"matchLabels": sel},
                 "template": {"metadata": {"labels": sel},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                 **spec_extra},
    }


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def make_deployment(api, ns: str, replicas: int = 2) -> tuple[str, dict]:
    name = uniq("d")
    d = (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(name, replicas))).expect(201)
    return f"/apis/apps/v1/namespaces/{ns}/deployments/{name}", d


async def update(api, url: str, mutate, *, sub: str = "", params: dict | None = None) -> Resp:
    """GET, mutate, PUT (to `url + sub`); retried on 409 Conflict in case a controller wrote meanwhile."""
    for _ in range(5):
        obj = (await api.get(url)).expect(200)
        mutate(obj)
        r = await api.put(url + sub, obj, params=params)
        if r.status != 409 or r.json.get("reason") != "Conflict":
            return r
    return r


def parse_warnings(resp: Resp) -> list[str]:
    """The texts of `Warning: 299 - "<quoted-string>"` headers (RFC 7234 quoted-string)."""
    out = []
    for h in resp.headers.getall("Warning", []):
        m = re.fullmatch(r'(\d{3}) (\S+) "((?:[^"\\]|\\.)*)"(?: .*)?', h.strip())
        assert m, f"malformed Warning header: {h!r}"
        assert m.group(1) == "299", h
        out.append(re.sub(r"\\(.)", r"\1", m.group(3)))
    return out


# ---------------------------------------------------------------------- generateName
async def test_generate_name(api, ns):
    names = set()
    for _ in range(3):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}
        cm = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).expect(201)
        name = cm["metadata"]["name"]
        assert re.fullmatch(r"gen-[bcdfghjklmnpqrstvwxz2456789]{5}", name), name
        assert cm["metadata"]["generateName"] == "gen-"
        (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")).expect(200)
        names.add(name)
    assert len(names) == 3


async def test_explicit_name_wins_over_generate_name(api, ns):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "exact", "generateName": "gen-"}}
    cm = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).expect(201)
    assert cm["metadata"]["name"] == "exact"


async def test_neither_name_nor_generate_name_is_invalid(api, ns):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}
    st = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).status_obj(422, "Invalid")
    assert "metadata.name" in [c["field"] for c in st["details"]["causes"]]
    assert "name or generateName is required" in st["message"]


# ---------------------------------------------------------------------- metadata.generation
async def test_generation(api, ns):
    url, d = await make_deployment(api, ns)
    assert d["metadata"]["generation"] == 1

    d = (await update(api, url, lambda o: o["spec"].update(replicas=3))).expect(200)
    assert d["metadata"]["generation"] == 2, "a spec change moves generation"

    d = (await update(api, url, lambda o: o["metadata"].setdefault("labels", {}).update(x="y"))).expect(200)
    assert d["metadata"]["labels"]["x"] == "y"
    assert d["metadata"]["generation"] == 2, "a label change does not"

    d = (await update(api, url, lambda o: o.update(status={"replicas": 3, "observedGeneration": 2}),
                      sub="/status")).expect(200)
    assert d["status"]["replicas"] == 3
    assert d["metadata"]["generation"] == 2, "a status write does not"
    d = (await api.patch(url + "/status", {"status": {"readyReplicas": 1}})).expect(200)
    assert d["metadata"]["generation"] == 2

    d = (await api.patch(url, {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, content_type="application/strategic-merge-patch+json")).expect(200)
    assert d["metadata"]["generation"] == 3, "a spec patch moves generation"
    assert (await api.get(url)).expect(200)["metadata"]["generation"] == 3


async def test_deployment_annotation_change_moves_generation(api, ns):
    url, d = await make_deployment(api, ns)
    d = (await api.patch(url, {"metadata": {"annotations": {"a": "b"}}})).expect(200)
    assert d["metadata"]["generation"] == 2


async def test_replicaset_annotation_change_keeps_generation(api, ns):
    """Only Deployments count annotations; other workloads move generation on spec changes alone."""
    name = uniq("rs")
    body = deployment(name)
    body["kind"] = "ReplicaSet"
    url = f"/apis/apps/v1/namespaces/{ns}/replicasets/{name}"
    rs = (await api.post(f"/apis/apps/v1/namespaces/{ns}/replicasets", body)).expect(201)
    assert rs["metadata"]["generation"] == 1
    rs = (await api.patch(url, {"metadata": {"annotations": {"a": "b"}, "labels": {"l": "1"}}})).expect(200)
    assert rs["metadata"]["generation"] == 1
    rs = (await api.patch(url, {"spec": {"replicas": 5}})).expect(200)
    assert rs["metadata"]["generation"] == 2


async def test_configmap_has_no_generation(api, ns):
    """Only kinds whose strategy tracks it carry metadata.generation (ConfigMap does not)."""
    cm = await api.configmap(ns)
    assert "generation" not in cm["metadata"]


# ---------------------------------------------------------------------- status subresource
async def test_status_write_ignores_spec_and_main_write_ignores_status(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)

    def status_write(o):
        o["spec"]["replicas"] = 9
        o["status"] = {"replicas": 2, "observedGeneration": 1, "collisionCount": 42}

    out = (await update(api, url, status_write, sub="/status")).expect(200)
    assert out["spec"]["replicas"] == 2, "status writes ignore spec"
    assert out["status"] == {"replicas": 2, "observedGeneration": 1, "collisionCount": 42}
    got = (await api.get(url)).expect(200)
    assert got["spec"]["replicas"] == 2 and got["status"].get("collisionCount") == 42

    def main_write(o):
        o["spec"]["replicas"] = 4
        o["status"] = {"replicas": 77, "collisionCount": 7}

    out = (await update(api, url, main_write)).expect(200)
    assert out["spec"]["replicas"] == 4
    assert out["status"].get("replicas") != 77 and out["status"].get("collisionCount") == 42, \
        "spec writes ignore status"
    got = (await api.get(url)).expect(200)
    assert got["spec"]["replicas"] == 4
    assert got["status"].get("replicas") != 77 and got["status"].get("collisionCount") == 42


async def test_status_patch_ignores_spec(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)
    out = (await api.patch(url + "/status", {"spec": {"replicas": 7}, "status": {"replicas": 1}})).expect(200)
    assert out["spec"]["replicas"] == 2 and out["status"]["replicas"] == 1


async def test_status_get(api, ns):
    url, d = await make_deployment(api, ns)
    st = (await api.get(url + "/status")).expect(200)
    assert st["kind"] == "Deployment" and st["metadata"]["uid"] == d["metadata"]["uid"]


# ---------------------------------------------------------------------- scale subresource
async def test_scale_get_shape(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)
    sc = (await api.get(url + "/scale")).expect(200)
    assert sc["kind"] == "Scale" and sc["apiVersion"] == "autoscaling/v1"
    m = sc["metadata"]
    assert m["name"] == d["metadata"]["name"] and m["namespace"] == ns
    assert m["uid"] == d["metadata"]["uid"]
    assert int(m["resourceVersion"]) >= int(d["metadata"]["resourceVersion"])
    assert sc["spec"] == {"replicas": 2}
    assert isinstance(sc["status"]["replicas"], int)
    assert sc["status"]["selector"] == f"app={d['metadata']['name']}"


async def test_scale_put(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)
    before = (await api.get(url + "/scale")).expect(200)
    out = (await update(api, url + "/scale", lambda sc: sc["spec"].update(replicas=5))).expect(200)
    assert out["kind"] == "Scale" and out["apiVersion"] == "autoscaling/v1" and out["spec"]["replicas"] == 5
    assert int(out["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    got = (await api.get(url)).expect(200)
    assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2


async def test_scale_put_with_stale_resource_version_is_409(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)
    stale = (await api.get(url + "/scale")).expect(200)
    (await api.patch(url, {"spec": {"replicas": 3}})).expect(200)
    stale["spec"]["replicas"] = 8
    (await api.put(url + "/scale", stale)).status_obj(409, "Conflict")
    assert (await api.get(url)).expect(200)["spec"]["replicas"] == 3


async def test_scale_patch(api, ns):
    url, d = await make_deployment(api, ns, replicas=2)
    out = (await api.patch(url + "/scale", {"spec": {"replicas": 3}})).expect(200)
    assert out["kind"] == "Scale" and out["apiVersion"] == "autoscaling/v1" and out["spec"]["replicas"] == 3
    got = (await api.get(url)).expect(200)
    assert got["spec"]["replicas"] == 3 and got["metadata"]["generation"] == 2
    assert int(got["metadata"]["resourceVersion"]) >= int(out["metadata"]["resourceVersion"])
    out = (await api.patch(url + "/scale", [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                           content_type="application/json-patch+json")).expect(200)
    assert out["spec"]["replicas"] == 4
    assert (await api.get(url)).expect(200)["spec"]["replicas"] == 4


async def test_scale_negative_is_invalid(api, ns):
    url, _ = await make_deployment(api, ns)
    st = (await api.patch(url + "/scale", {"spec": {"replicas": -1}})).status_obj(422, "Invalid")
    assert "spec.replicas" in [c["field"] for c in st["details"]["causes"]]
    assert st["details"]["kind"] == "Scale" and st["details"].get("group") == "autoscaling"
    assert (await api.get(url)).expect(200)["spec"]["replicas"] == 2


async def test_scale_of_missing_is_404(api, ns):
    st = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nope/scale")).status_obj(404, "NotFound")
    assert st["message"] == 'deployments.apps "nope" not found'


# ---------------------------------------------------------------------- pods/binding
async def test_pod_binding(api, ns):
    name = uniq("p")
    (await api.post(f"/api/v1/namespaces/{ns}/pods", pod(name))).expect(201)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    st = (await api.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding)).expect(201)
    assert st["kind"] == "Status" and st["status"] == "Success"
    got = (await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")).expect(200)
    assert got["spec"]["nodeName"] == "node-a"
    conds = {c["type"]: c for c in got["status"].get("conditions", [])}
    assert conds["PodScheduled"]["status"] == "True"

    binding["target"]["name"] = "node-b"
    st = (await api.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding)).status_obj(409, "Conflict")
    assert f'pod {name} is already assigned to node "node-a"' in st["message"]
    assert (await api.get(f"/api/v1/namespaces/{ns}/pods/{name}")).expect(200)["spec"]["nodeName"] == "node-a"


async def test_pod_binding_conflict_names_pods_binding(api, ns):
    name = uniq("p")
    (await api.post(f"/api/v1/namespaces/{ns}/pods", pod(name))).expect(201)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    (await api.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding)).expect(201)
    st = (await api.post(f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding)).status_obj(409, "Conflict")
    assert st["message"] == (f'Operation cannot be fulfilled on pods/binding "{name}": '
                             f'pod {name} is already assigned to node "node-a"')
    assert st["details"]["kind"] == "pods/binding" and st["details"]["name"] == name


async def test_binding_missing_pod_is_404(api, ns):
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "ghost"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-a"}}
    (await api.post(f"/api/v1/namespaces/{ns}/pods/ghost/binding", binding)).status_obj(404, "NotFound")


# ---------------------------------------------------------------------- dryRun
async def test_dry_run_create_writes_nothing(api, ns):
    name = uniq("dry")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}
    out = (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body, params={"dryRun": "All"})).expect(201)
    assert out["metadata"]["name"] == name and out["data"] == {"a": "b"}
    assert out["metadata"].get("uid") and out["metadata"].get("creationTimestamp")
    (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")).status_obj(404, "NotFound")
    lst = (await api.get(f"/api/v1/namespaces/{ns}/configmaps")).expect(200)
    assert name not in [i["metadata"]["name"] for i in lst["items"]]
    # the real create afterwards is not an AlreadyExists
    (await api.post(f"/api/v1/namespaces/{ns}/configmaps", body)).expect(201)


async def test_dry_run_update_patch_delete_write_nothing(api, ns):
    cm = await api.configmap(ns, data={"a": "1"})
    url = f"/api/v1/namespaces/{ns}/configmaps/{cm['metadata']['name']}"
    upd = dict(cm, data={"a": "2"})
    out = (await api.put(url, upd, params={"dryRun": "All"})).expect(200)
    assert out["data"] == {"a": "2"}
    out = (await api.patch(url, {"data": {"a": "3"}}, params={"dryRun": "All"})).expect(200)
    assert out["data"] == {"a": "3"}
    (await api.delete(url, params={"dryRun": "All"})).expect(200)
    got = (await api.get(url)).expect(200)
    assert got["data"] == {"a": "1"}
    assert got["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


# ---------------------------------------------------------------------- fieldValidation
async def test_field_validation_strict_rejects_unknown_field(api, ns):
    name = uniq("strict")
    body = deployment(name, foo="bar")
    st = (await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", body,
                         params={"fieldValidation": "Strict"})).status_obj(400, "BadRequest")
    assert 'strict decoding error: unknown field "spec.foo"' in st["message"]
    (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")).status_obj(404, "NotFound")


async def test_field_validation_warn_drops_and_warns(api, ns):
    name = uniq("warn")
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(name, foo="bar"),
                       params={"fieldValidation": "Warn"})
    out = r.expect(201)
    assert 'unknown field "spec.foo"' in parse_warnings(r)
    assert "foo" not in out["spec"]
    got = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")).expect(200)
    assert "foo" not in got["spec"]


async def test_field_validation_defaults_to_warn(api, ns):
    name = uniq("dflt")
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(name, foo="bar"))
    r.expect(201)
    assert 'unknown field "spec.foo"' in parse_warnings(r)
    got = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")).expect(200)
    assert "foo" not in got["spec"]


async def test_field_validation_ignore_drops_silently(api, ns):
    name = uniq("ign")
    r = await api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment(name, foo="bar"),
                       params={"fieldValidation": "Ignore"})
    r.expect(201)
    assert parse_warnings(r) == []
    got = (await api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")).expect(200)
    assert "foo" not in got["spec"]


async def test_field_validation_strict_on_update(api, ns):
    url, d = await make_deployment(api, ns)
    r = await update(api, url, lambda o: o["spec"].update(foo=1), params={"fieldValidation": "Strict"})
    st = r.status_obj(400, "BadRequest")
    assert 'strict decoding error: unknown field "spec.foo"' in st["message"]
    assert "foo" not in (await api.get(url)).expect(200)["spec"]
