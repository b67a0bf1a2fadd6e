"""Discovery documents (legacy and aggregated) and the meta.k8s.io renderings
(Table, PartialObjectMetadata[List]) as upstream kube-apiserver serves them."""

from __future__ import annotations

from apiserver_helpers import AUTO_CREATED, uniq

AGG_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io"
POM_ACCEPT = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
POML_ACCEPT = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"


def media_params(ctype: str) -> tuple[str, dict[str, str]]:
    base, *rest = [p.strip() for p in ctype.split(";")]
    params = {}
    for p in rest:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return base.lower(), params


def by_name(resources: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in resources}


# ---------------------------------------------------------------------- legacy discovery
async def test_api_versions(api):
    doc = (await api.get("/api")).expect(200)
    assert doc["kind"] == "APIVersions"
    assert doc["versions"] == ["v1"]
    cidrs = doc["serverAddressByClientCIDRs"]
    assert cidrs and all("clientCIDR" in c and "serverAddress" in c for c in cidrs)


async def test_core_v1_resource_list(api):
    doc = (await api.get("/api/v1")).expect(200)
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    res = by_name(doc["resources"])
    pods = res["pods"]
    assert pods["kind"] == "Pod" and pods["namespaced"] is True and pods["singularName"] == "pod"
    assert set(pods["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert "po" in pods.get("shortNames", [])
    assert res["namespaces"]["namespaced"] is False and res["namespaces"]["kind"] == "Namespace"
    assert res["pods/status"]["kind"] == "Pod"
    assert set(res["pods/status"]["verbs"]) == {"get", "patch", "update"}
    assert res["pods/binding"]["kind"] == "Binding" and res["pods/binding"]["verbs"] == ["create"]
    assert res["configmaps"]["shortNames"] == ["cm"]


async def test_api_group_list(api):
    doc = (await api.get("/apis")).expect(200)
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    groups = {g["name"]: g for g in doc["groups"]}
    assert "" not in groups, "the core group is not listed under /apis"
    apps = groups["apps"]
    assert {"groupVersion": "apps/v1", "version": "v1"} in apps["versions"]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert "rbac.authorization.k8s.io" in groups and "batch" in groups


async def test_api_group(api):
    doc = (await api.get("/apis/apps")).expect(200)
    assert doc["kind"] == "APIGroup" and doc["apiVersion"] == "v1"
    assert doc["name"] == "apps"
    assert doc["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert doc["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}


async def test_apps_v1_resource_list(api):
    doc = (await api.get("/apis/apps/v1")).expect(200)
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "apps/v1"
    res = by_name(doc["resources"])
    d = res["deployments"]
    assert d["kind"] == "Deployment" and d["namespaced"] is True and d["singularName"] == "deployment"
    assert "deploy" in d["shortNames"] and "all" in d.get("categories", [])
    scale = res["deployments/scale"]
    assert scale["kind"] == "Scale" and scale["group"] == "autoscaling" and scale["version"] == "v1"
    assert set(scale["verbs"]) == {"get", "patch", "update"}
    assert res["deployments/status"]["kind"] == "Deployment"


async def test_unknown_group_version_is_404(api):
    (await api.get("/apis/nope.example.com")).status_obj(404, "NotFound")
    (await api.get("/apis/apps/v7")).status_obj(404, "NotFound")


# ---------------------------------------------------------------------- aggregated discovery
async def test_aggregated_discovery_apis(api):
    r = await api.get("/apis", headers={"Accept": AGG_ACCEPT})
    doc = r.expect(200)
    base, params = media_params(r.content_type)
    assert base == "application/json"
    assert params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
    assert params.get("as") == "APIGroupDiscoveryList"
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    groups = {g["metadata"].get("name", ""): g for g in doc["items"]}
    assert "" not in groups
    apps = groups["apps"]
    v1 = next(v for v in apps["versions"] if v["version"] == "v1")
    res = {r["resource"]: r for r in v1["resources"]}
    d = res["deployments"]
    assert d["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert d["scope"] == "Namespaced" and d["singularResource"] == "deployment"
    assert "watch" in d["verbs"] and "deletecollection" in d["verbs"]
    subs = {s["subresource"]: s for s in d["subresources"]}
    assert subs["scale"]["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert set(subs["status"]["verbs"]) == {"get", "patch", "update"}
    crb = {r["resource"]: r for v in groups["rbac.authorization.k8s.io"]["versions"] for r in v["resources"]}
    assert crb["clusterroles"]["scope"] == "Cluster"


async def test_aggregated_discovery_core(api):
    r = await api.get("/api", headers={"Accept": AGG_ACCEPT})
    doc = r.expect(200)
    _, params = media_params(r.content_type)
    assert params.get("as") == "APIGroupDiscoveryList" and params.get("v") == "v2"
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert len(doc["items"]) == 1, "the core group alone"
    core = doc["items"][0]
    assert core["metadata"].get("name", "") == ""
    v1 = next(v for v in core["versions"] if v["version"] == "v1")
    res = {r["resource"]: r for r in v1["resources"]}
    pods = res["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced"
    assert set(pods["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["status"]["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert set(subs["status"]["verbs"]) == {"get", "patch", "update"}
    assert subs["binding"]["responseKind"] == {"group": "", "version": "v1", "kind": "Binding"}
    assert subs["binding"]["verbs"] == ["create"]
    assert res["namespaces"]["scope"] == "Cluster"


async def test_aggregated_discovery_falls_back_to_legacy(api):
    """A client that also accepts plain JSON gets the aggregated document first when it asks
    for it first, and the legacy one when it does not ask at all."""
    r = await api.get("/apis", headers={"Accept": AGG_ACCEPT + ",application/json"})
    assert r.expect(200)["kind"] == "APIGroupDiscoveryList"
    r = await api.get("/apis", headers={"Accept": "application/json"})
    assert r.expect(200)["kind"] == "APIGroupList"


# ---------------------------------------------------------------------- Table / partial metadata
async def test_table_list(api, ns):
    names = sorted([uniq("a"), uniq("b")])
    for n in names:
        await api.configmap(ns, n, {"x": "1", "y": "2"})
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": TABLE_ACCEPT})
    t = r.expect(200)
    assert r.content_type.startswith("application/json")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"].get("resourceVersion")
    cols = t["columnDefinitions"]
    assert [c["name"] for c in cols] == ["Name", "Data", "Age"]
    assert cols[0]["type"] == "string" and cols[0]["format"] == "name"
    for c in cols:
        assert {"name", "type", "format", "description", "priority"} <= set(c)
    rows = [row for row in t["rows"] if row["cells"][0] not in AUTO_CREATED]
    assert [row["cells"][0] for row in rows] == names
    for row in rows:
        assert len(row["cells"]) == len(cols)
        assert row["cells"][1] == 2
        obj = row["object"]
        assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
        assert obj["metadata"]["name"] == row["cells"][0] and obj["metadata"]["uid"]
        assert "data" not in obj


async def test_table_get_and_include_object(api, ns):
    cm = await api.configmap(ns)
    name = cm["metadata"]["name"]
    t = (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}", headers={"Accept": TABLE_ACCEPT})).expect(200)
    assert t["kind"] == "Table" and len(t["rows"]) == 1
    assert t["rows"][0]["cells"][0] == name
    assert t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    full = (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}", headers={"Accept": TABLE_ACCEPT},
                          params={"includeObject": "Object"})).expect(200)
    assert full["rows"][0]["object"]["kind"] == "ConfigMap" and full["rows"][0]["object"]["data"] == {"k": "v"}
    none = (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}", headers={"Accept": TABLE_ACCEPT},
                          params={"includeObject": "None"})).expect(200)
    assert "object" not in none["rows"][0] or none["rows"][0]["object"] is None


async def test_partial_object_metadata(api, ns):
    cm = await api.configmap(ns, labels={"l": "1"})
    name = cm["metadata"]["name"]
    p = (await api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}", headers={"Accept": POM_ACCEPT})).expect(200)
    assert p["kind"] == "PartialObjectMetadata" and p["apiVersion"] == "meta.k8s.io/v1"
    assert p["metadata"]["name"] == name and p["metadata"]["labels"] == {"l": "1"}
    assert p["metadata"]["uid"] == cm["metadata"]["uid"]
    assert "data" not in p

    lst = (await api.get(f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": POML_ACCEPT})).expect(200)
    assert lst["kind"] == "PartialObjectMetadataList" and lst["apiVersion"] == "meta.k8s.io/v1"
    assert lst["metadata"].get("resourceVersion")
    items = [i for i in lst["items"] if i["metadata"]["name"] not in AUTO_CREATED]
    assert [i["metadata"]["name"] for i in items] == [name]
    assert "data" not in items[0]


async def test_unsupported_accept_is_406(api, ns):
    r = await api.get(f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": "text/csv"})
    r.status_obj(406, "NotAcceptable")
