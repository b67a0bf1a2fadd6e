"""The /openapi/v2 and /openapi/v3 documents."""

from __future__ import annotations

import hashlib

import orjson

from kybernetes.api import openapi
from kybernetes.api.openapi import ServedResource as R

RES = [
    R("", "v1", "Pod", "pods", True, subresources=("status", "log", "exec", "binding", "eviction")),
    R("", "v1", "Namespace", "namespaces", False, verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
      subresources=("status", "finalize")),
    R("", "v1", "ConfigMap", "configmaps"),
    R("", "v1", "ServiceAccount", "serviceaccounts", subresources=("token",)),
    R("apps", "v1", "Deployment", "deployments", subresources=("status", "scale")),
    R("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    R("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=("create",)),
]


def _many() -> list[R]:
    """About 60 resources, like a full server serves."""
    kinds = [
        ("", "v1", "Pod", "pods", True), ("", "v1", "Service", "services", True),
        ("", "v1", "Namespace", "namespaces", False), ("", "v1", "Node", "nodes", False),
        ("", "v1", "ConfigMap", "configmaps", True), ("", "v1", "Secret", "secrets", True),
        ("", "v1", "ServiceAccount", "serviceaccounts", True), ("", "v1", "Endpoints", "endpoints", True),
        ("", "v1", "Event", "events", True), ("", "v1", "PersistentVolume", "persistentvolumes", False),
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True),
        ("", "v1", "ReplicationController", "replicationcontrollers", True),
        ("", "v1", "ResourceQuota", "resourcequotas", True), ("", "v1", "LimitRange", "limitranges", True),
        ("", "v1", "PodTemplate", "podtemplates", True), ("", "v1", "ComponentStatus", "componentstatuses", False),
        ("apps", "v1", "Deployment", "deployments", True), ("apps", "v1", "ReplicaSet", "replicasets", True),
        ("apps", "v1", "StatefulSet", "statefulsets", True), ("apps", "v1", "DaemonSet", "daemonsets", True),
        ("apps", "v1", "ControllerRevision", "controllerrevisions", True),
        ("batch", "v1", "Job", "jobs", True), ("batch", "v1", "CronJob", "cronjobs", True),
        ("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
        ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
        ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True),
        ("networking.k8s.io", "v1", "Ingress", "ingresses", True),
        ("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
        ("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", False),
        ("networking.k8s.io", "v1", "IPAddress", "ipaddresses", False),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False),
        ("storage.k8s.io", "v1", "StorageClass", "storageclasses", False),
        ("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", False),
        ("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False), ("storage.k8s.io", "v1", "CSINode", "csinodes", False),
        ("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", True),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", False),
        ("coordination.k8s.io", "v1", "Lease", "leases", True),
        ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
        ("events.k8s.io", "v1", "Event", "events", True),
        ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False),
        ("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", False),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False),
        ("apiregistration.k8s.io", "v1", "APIService", "apiservices", False),
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False),
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", False),
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", False),
        ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", False),
        ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", False),
    ]
    out = [R(g, v, k, p, ns, subresources=("status",)) for g, v, k, p, ns in kinds]
    create_only = [
        ("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False),
        ("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False),
        ("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False),
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False),
        ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", False),
        ("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", True),
        ("", "v1", "Binding", "bindings", True),
    ]
    out += [R(g, v, k, p, ns, verbs=("create",)) for g, v, k, p, ns in create_only]
    return out


def test_v2_document_shape() -> None:
    doc = orjson.loads(openapi.openapi_v2(RES))
    assert doc["swagger"] == "2.0"
    assert doc["info"] == {"title": "Kubernetes", "version": "v1.37.1"}
    paths = doc["paths"]
    coll = paths["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert coll["get"]["x-kubernetes-action"] == "list"
    assert coll["get"]["operationId"] == "listAppsV1NamespacedDeployment"
    assert coll["post"]["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert coll["post"]["parameters"][0] == {
        "name": "body", "in": "body", "required": True,
        "schema": {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"},
    }
    assert coll["delete"]["x-kubernetes-action"] == "deletecollection"
    assert [p["name"] for p in coll["parameters"]] == ["namespace", "pretty"]
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert set(item) == {"get", "put", "patch", "delete", "parameters"}
    assert item["patch"]["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in item["patch"]["consumes"]
    assert item["delete"]["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"}
    assert paths["/apis/apps/v1/deployments"]["get"]["operationId"] == "listAppsV1DeploymentForAllNamespaces"
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert paths["/api/v1/namespaces/{name}"]["get"]["operationId"] == "readCoreV1Namespace"
    assert "put" in paths["/api/v1/namespaces/{name}/finalize"]
    assert "post" in paths["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/{name}" not in paths
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]["x-kubernetes-action"] == "connect"
    assert paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["responses"]["200"]["schema"] == {"type": "string"}
    assert paths["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"]["x-kubernetes-group-version-kind"]["kind"] == "TokenRequest"
    for p in ("/api/", "/apis/", "/apis/apps/", "/version/", "/api/v1/", "/apis/apps/v1/"):
        assert p in paths
    defs = doc["definitions"]
    for name in ("io.k8s.api.apps.v1.Deployment", "io.k8s.api.apps.v1.DeploymentList", "io.k8s.api.core.v1.Container",
                 "io.k8s.api.autoscaling.v1.Scale", "io.k8s.api.policy.v1.Eviction",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList", "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
                 "io.k8s.apimachinery.pkg.version.Info"):
        assert name in defs, name
    assert "io.k8s.api.batch.v1.Job" not in defs
    # every $ref resolves inside the document
    text = openapi.openapi_v2(RES).decode()
    for ref in set(part.split('"')[0] for part in text.split('"$ref":"#/definitions/')[1:]):
        assert ref in defs


def test_v2_is_cached_with_etag() -> None:
    a = openapi.openapi_v2_document(RES)
    b = openapi.openapi_v2_document(list(reversed(RES)))  # order does not matter
    assert a is b
    assert a.hash == hashlib.sha512(a.body).hexdigest().upper()
    assert a.etag == f'"{a.hash}"'


def test_v3_index_lists_paths_with_content_hashes() -> None:
    index = orjson.loads(openapi.openapi_v3_index(RES))["paths"]
    assert set(index) == {
        "api", "api/v1", "apis", "version",
        "apis/apps", "apis/apps/v1",
        "apis/rbac.authorization.k8s.io", "apis/rbac.authorization.k8s.io/v1",
        "apis/authorization.k8s.io", "apis/authorization.k8s.io/v1",
    }
    url = index["apis/apps/v1"]["serverRelativeURL"]
    body = openapi.openapi_v3_group_version(RES, "apis/apps/v1")
    assert url == "/openapi/v3/apis/apps/v1?hash=" + hashlib.sha512(body).hexdigest().upper()
    assert openapi.openapi_v3_document(RES, "apis/batch/v1") is None


def test_v3_group_version_document() -> None:
    doc = orjson.loads(openapi.openapi_v3_group_version(RES, "apis/apps/v1"))
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["title"] == "Kubernetes"
    paths = doc["paths"]
    assert all(p.startswith("/apis/apps/v1/") for p in paths)
    patch = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    # kubectl: server-side field validation when PATCH lists fieldValidation ...
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    # ... and strategic merge patch computed from this schema when PATCH accepts it.
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert patch["requestBody"]["content"]["application/json-patch+json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}
    get = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"}
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert "io.k8s.api.core.v1.PodSpec" in schemas and "io.k8s.api.core.v1.Pod" not in schemas
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    text = openapi.openapi_v3_group_version(RES, "apis/apps/v1").decode()
    assert "#/definitions/" not in text
    for ref in set(part.split('"')[0] for part in text.split('"$ref":"#/components/schemas/')[1:]):
        assert ref in schemas
    core = orjson.loads(openapi.openapi_v3_group_version(RES, "api/v1"))
    assert "/api/v1/namespaces/{namespace}/pods/{name}/binding" in core["paths"]
    assert "/api/v1/pods" in core["paths"]


def test_v3_discovery_paths() -> None:
    apis = orjson.loads(openapi.openapi_v3_group_version(RES, "apis"))
    assert apis["paths"]["/apis/"]["get"]["operationId"] == "getAPIVersions"
    group = orjson.loads(openapi.openapi_v3_group_version(RES, "apis/apps"))
    assert group["paths"]["/apis/apps/"]["get"]["operationId"] == "getAppsAPIGroup"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup" in group["components"]["schemas"]


def test_unknown_kinds_are_left_out() -> None:
    res = RES + [R("example.com", "v1", "Widget", "widgets")]
    assert "apis/example.com/v1" not in openapi.openapi_v3_paths(res)
    assert b"/apis/example.com/v1/" not in openapi.openapi_v2(res)


def test_dict_resources_accepted() -> None:
    d = [{"group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments",
          "namespaced": True, "verbs": ["get", "list"], "subresources": []}]
    doc = orjson.loads(openapi.openapi_v3_group_version(d, "apis/apps/v1"))
    assert set(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]) == {"get", "parameters"}


def test_sixty_resources_build_once_and_are_cached() -> None:
    res = _many()
    assert len(res) >= 60
    openapi.clear_cache()
    openapi.openapi_v2(res)
    paths = openapi.openapi_v3_paths(res)
    openapi.openapi_v3_index(res)  # builds every group-version document for the hashes
    assert len(paths) > 30
    # Served from the cache: the very same bytes object, not a rebuild.
    for p in paths:
        assert openapi.openapi_v3_group_version(res, p) is openapi.openapi_v3_group_version(res, p)


def _fields(buf: bytes) -> list[tuple[int, object]]:
    """A minimal protobuf wire reader: (field number, int or bytes) pairs."""
    out, i = [], 0
    while i < len(buf):
        key, i = _uvarint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _uvarint(buf, i)
            out.append((field, val))
        elif wire == 2:
            n, i = _uvarint(buf, i)
            out.append((field, buf[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _uvarint(buf: bytes, i: int) -> tuple[int, int]:
    shift = val = 0
    while True:
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, i


def test_v2_protobuf_encoding() -> None:
    body = openapi.openapi_v2_protobuf(RES)
    top = _fields(body)
    assert top[0] == (1, b"2.0")  # swagger
    info = dict(_fields(top[1][1]))  # type: ignore[arg-type]
    assert info == {1: b"Kubernetes", 2: b"v1.37.1"}
    paths = {}
    for f, v in _fields(dict(top)[8]):  # type: ignore[arg-type]
        named = dict(_fields(v))  # type: ignore[arg-type]
        paths[named[1].decode()] = named[2]  # type: ignore[union-attr]
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in paths
    patch_op = dict(_fields(paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]))[8]  # PathItem.patch
    exts = [dict(_fields(v)) for f, v in _fields(patch_op) if f == 13]  # type: ignore[arg-type]
    gvk = {e[1].decode(): dict(_fields(e[2]))[2].decode() for e in exts}  # type: ignore[union-attr]
    assert orjson.loads(gvk["x-kubernetes-group-version-kind"]) == {"group": "apps", "kind": "Deployment", "version": "v1"}
    names = set()
    for f, v in _fields(dict(top)[9]):  # type: ignore[arg-type]
        names.add(dict(_fields(v))[1].decode())  # type: ignore[union-attr]
    assert names == set(orjson.loads(openapi.openapi_v2(RES))["definitions"])
    assert openapi.openapi_v2_protobuf_document(RES) is openapi.openapi_v2_protobuf_document(RES)
