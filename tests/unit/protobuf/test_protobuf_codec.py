"""Kubernetes protobuf codec: hand-built wire bytes, round trips, errors."""

from __future__ import annotations

import base64
import copy

import pytest

from kybernetes.api import protobuf as pb
from kybernetes.api.protobuf import ProtobufError, decode, encode
from kybernetes.api.protobuf.codec import (
    decode_message,
    encode_message,
    format_duration,
    parse_duration,
)

META = "k8s.io.apimachinery.pkg.apis.meta.v1"


# --- a tiny independent wire writer, so the decoder is not checked against itself

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def vfield(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def lfield(num: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = lfield(1, api_version) + lfield(2, kind)
    return b"k8s\x00" + lfield(1, type_meta) + lfield(2, raw) + lfield(3, b"") + lfield(4, b"")


def gogo_object_meta(name: str, namespace: str = "", labels: dict[str, str] | None = None) -> bytes:
    """ObjectMeta as Go's generated marshaller writes it: zero fields included."""
    out = (lfield(1, name) + lfield(2, "") + lfield(3, namespace) + lfield(4, "")
           + lfield(5, "") + lfield(6, "") + vfield(7, 0) + lfield(8, b""))
    for k, v in sorted((labels or {}).items()):
        out += lfield(11, lfield(1, k) + lfield(2, v))
    return out


# --- hand-built bodies as kubectl sends them

def test_handbuilt_namespace() -> None:
    ns = lfield(1, gogo_object_meta("foo")) + lfield(2, b"") + lfield(3, lfield(1, ""))
    assert decode(envelope("v1", "Namespace", ns)) == {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "foo"}, "spec": {}, "status": {},
    }


def test_handbuilt_configmap() -> None:
    cm = (lfield(1, gogo_object_meta("x", "default", {"app": "web", "empty": ""}))
          + lfield(2, lfield(1, "a") + lfield(2, "b"))
          + lfield(2, lfield(1, "multi") + lfield(2, "line1\nline2\n"))
          + lfield(3, lfield(1, "bin") + lfield(2, b"\x00\xff\x10"))
          + vfield(4, 1))  # immutable: true
    assert decode(envelope("v1", "ConfigMap", cm)) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "default",
                     "labels": {"app": "web", "empty": ""}},
        "data": {"a": "b", "multi": "line1\nline2\n"},
        "binaryData": {"bin": base64.b64encode(b"\x00\xff\x10").decode()},
        "immutable": True,
    }


def test_unknown_fields_are_skipped() -> None:
    cm = (lfield(1, gogo_object_meta("x")) + vfield(900, 7) + lfield(901, "junk")
          + varint((902 << 3) | 1) + b"\x00" * 8 + varint((903 << 3) | 5) + b"\x00" * 4
          + lfield(2, lfield(1, "a") + lfield(2, "b")))
    assert decode(envelope("v1", "ConfigMap", cm))["data"] == {"a": "b"}


def test_packed_repeated_ints_decode() -> None:
    # PodSecurityContext.supplementalGroups (field 4, repeated int64), packed form.
    packed = varint(1) + varint(2) + varint(3000)
    ctx = lfield(4, packed) + vfield(4, 5)
    assert decode_message("k8s.io.api.core.v1.PodSecurityContext", ctx) == {
        "supplementalGroups": [1, 2, 3000, 5]}


def test_negative_int32_is_ten_byte_varint() -> None:
    wire = encode_message("k8s.io.api.core.v1.ContainerPort", {"containerPort": -1})
    assert wire == varint(3 << 3) + b"\xff" * 9 + b"\x01"
    assert decode_message("k8s.io.api.core.v1.ContainerPort", wire) == {"containerPort": -1}


def test_negative_int64() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"template": {"spec": {"terminationGracePeriodSeconds": -30}}},
           "status": {"observedGeneration": -(2 ** 62)}}
    got = decode(encode(obj))
    assert got["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == -30
    assert got["status"]["observedGeneration"] == -(2 ** 62)


# --- round trips

def roundtrip(obj: dict) -> dict:
    original = copy.deepcopy(obj)
    body = encode(obj)
    assert obj == original  # encode must not mutate its input
    assert body.startswith(b"k8s\x00")
    return decode(body)


POD = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {
        "name": "web-0", "namespace": "default", "uid": "1f6c4b2a-0000-4000-8000-000000000001",
        "resourceVersion": "123", "generation": 2,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"app": "web", "tier": ""}, "annotations": {"note": "x"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                             "uid": "u1", "controller": True, "blockOwnerDeletion": True}],
        "finalizers": ["a/b"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                           "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {}}}}}],
    },
    "spec": {
        "containers": [{
            "name": "web", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                      {"containerPort": 53, "protocol": "UDP", "hostPort": 5353}],
            "env": [{"name": "A", "value": "1"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                               "fieldPath": "metadata.name"}}},
                    {"name": "S", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "k",
                                                                 "optional": False}}}],
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                          "requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "1Gi"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                               "initialDelaySeconds": 3, "periodSeconds": 5},
            "livenessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False, "privileged": False,
                                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
            "imagePullPolicy": "IfNotPresent",
        }],
        "volumes": [
            {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420,
                                          "items": [{"key": "a", "path": "a.txt", "mode": 256}]}},
            {"name": "sec", "secret": {"secretName": "sec", "optional": True}},
            {"name": "proj", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
        ],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False, "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                         "tolerationSeconds": 10}],
        "hostNetwork": True, "dnsPolicy": "ClusterFirst", "priority": -10,
        "securityContext": {"supplementalGroups": [1000, 2000], "fsGroup": 2000},
    },
    "status": {
        "phase": "Running", "podIP": "10.1.2.3", "podIPs": [{"ip": "10.1.2.3"}],
        "startTime": "2024-01-02T03:04:06Z",
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2024-01-02T03:04:07Z"}],
        "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0, "image": "nginx",
                               "imageID": "", "started": True,
                               "state": {"running": {"startedAt": "2024-01-02T03:04:08Z"}}}],
    },
}


def test_pod_roundtrip() -> None:
    got = roundtrip(POD)
    # imageID is "" in the input: a non-omitempty string left empty reads back absent.
    expected = copy.deepcopy(POD)
    del expected["status"]["containerStatuses"][0]["imageID"]
    assert got == expected


def test_volume_source_is_inlined() -> None:
    # Volume.volumeSource is a proto field of its own but JSON flattens it.
    vol = {"name": "data", "hostPath": {"path": "/tmp", "type": "Directory"}}
    wire = encode_message("k8s.io.api.core.v1.Volume", vol)
    inner = lfield(1, "/tmp") + lfield(2, "Directory")
    assert wire == lfield(1, "data") + lfield(2, lfield(1, inner))
    assert decode_message("k8s.io.api.core.v1.Volume", wire) == vol


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "d"}},
    "spec": {
        "replicas": 0,
        "selector": {"matchLabels": {"app": "d"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
        "template": {"metadata": {"labels": {"app": "d"}},
                     "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}]}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600, "paused": True,
    },
    "status": {"replicas": 1, "conditions": [{
        "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
        "lastUpdateTime": "2024-01-02T03:04:05Z", "lastTransitionTime": "2024-01-02T03:04:05Z"}]},
}


def test_deployment_roundtrip() -> None:
    got = roundtrip(DEPLOYMENT)
    assert got == DEPLOYMENT
    assert got["spec"]["replicas"] == 0
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 1}


def test_intorstring_wire_form() -> None:
    name = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
    assert encode_message(name, 1) == vfield(1, 0) + vfield(2, 1) + lfield(3, "")
    assert encode_message(name, "25%") == vfield(1, 1) + vfield(2, 0) + lfield(3, "25%")
    assert decode_message(name, vfield(1, 1) + lfield(3, "http")) == "http"
    assert decode_message(name, vfield(2, 8080)) == 8080
    assert decode_message(name, b"") == 0


def test_secret_binary_roundtrip() -> None:
    data = bytes(range(256))
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "s", "namespace": "default"},
              "data": {"bin": base64.b64encode(data).decode(), "empty": ""},
              "stringData": {"plain": "text"}, "immutable": False}
    assert roundtrip(secret) == secret
    raw = encode_message("k8s.io.api.core.v1.Secret", secret)
    assert lfield(1, "bin") + lfield(2, data) in raw  # raw bytes on the wire, not base64


SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "svc", "namespace": "default"},
    "spec": {
        "type": "NodePort", "selector": {"app": "svc"},
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                  {"name": "named", "protocol": "TCP", "port": 443, "targetPort": "https"}],
        "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
        "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True,
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ports": [{"port": 80, "protocol": "TCP"}]}]}},
}


def test_service_roundtrip() -> None:
    assert roundtrip(SERVICE) == SERVICE


def test_status_roundtrip_any_group() -> None:
    status = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
              "message": 'pods "x" not found', "reason": "NotFound",
              "details": {"name": "x", "kind": "pods",
                          "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec"}],
                          "retryAfterSeconds": 1},
              "code": 404}
    assert roundtrip(status) == status
    # Status and the option kinds are valid under every group version.
    assert pb.message_type("apps/v1", "Status") == f"{META}.Status"
    assert pb.message_type("apps/v1", "DeleteOptions") == f"{META}.DeleteOptions"


def test_delete_options_roundtrip() -> None:
    opts = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "propagationPolicy": "Foreground", "dryRun": ["All"],
            "preconditions": {"uid": "u", "resourceVersion": "5"}}
    assert roundtrip(opts) == opts


def test_pod_list_roundtrip() -> None:
    pod_a = {k: v for k, v in POD.items() if k not in ("apiVersion", "kind")}
    pod_b = {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
             "status": {}}
    lst = {"apiVersion": "v1", "kind": "PodList",
           "metadata": {"resourceVersion": "99", "continue": "tok", "remainingItemCount": 5},
           "items": [pod_a, pod_b]}
    expected = copy.deepcopy(lst)
    del expected["items"][0]["status"]["containerStatuses"][0]["imageID"]
    assert roundtrip(lst) == expected


def test_empty_list() -> None:
    lst = {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "1"}}
    assert roundtrip(lst) == lst


def test_generic_list_with_raw_items() -> None:
    # v1 List items are RawExtensions; JSON bytes inside read back as objects.
    lst = {"apiVersion": "v1", "kind": "List", "metadata": {},
           "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]}
    assert roundtrip(lst) == lst


def test_raw_extension_holding_protobuf() -> None:
    inner = encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    rev = lfield(1, gogo_object_meta("r")) + lfield(2, lfield(1, inner)) + vfield(3, 4)
    got = decode(envelope("apps/v1", "ControllerRevision", rev))
    assert got["data"] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    assert got["revision"] == 4


def test_timestamps() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "l", "creationTimestamp": "1969-12-31T23:59:59Z"},
             "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
                      "acquireTime": "2024-01-02T03:04:05.123456Z",
                      "renewTime": "2024-01-02T03:04:05.000000Z"}}
    assert roundtrip(lease) == lease
    # Time has second precision in JSON; offsets are normalised to UTC.
    got = roundtrip({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "n", "creationTimestamp": "2024-01-02T05:04:05.9+02:00"}})
    assert got["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    # MicroTime keeps microseconds.
    t = encode_message(f"{META}.MicroTime", "2024-01-02T03:04:05.5Z")
    assert t == vfield(1, 1704164645) + vfield(2, 500_000_000)
    assert decode_message(f"{META}.MicroTime", t) == "2024-01-02T03:04:05.500000Z"
    assert decode_message(f"{META}.Time", t) == "2024-01-02T03:04:05Z"


def test_zero_time_is_omitted() -> None:
    # gogo writes a zero creationTimestamp as an empty message; JSON says null.
    meta = lfield(1, "n") + lfield(8, b"") + lfield(9, vfield(1, 0) + vfield(2, 0))
    assert decode_message(f"{META}.ObjectMeta", meta) == {"name": "n"}


def test_event_microtime_and_series() -> None:
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
          "reason": "Started", "message": "ok", "type": "Normal", "count": 3,
          "source": {"component": "kubelet", "host": "n1"},
          "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:06Z",
          "eventTime": "2024-01-02T03:04:05.000001Z",
          "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:07.250000Z"},
          "reportingComponent": "kubelet", "reportingInstance": "n1"}
    assert roundtrip(ev) == ev


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1_500, "1.5µs"), (1_000_000, "1ms"), (100_000_000, "100ms"),
    (1_500_000_000, "1.5s"), (60_000_000_000, "1m0s"), (3_723_000_000_000, "1h2m3s"),
    (3_600_000_000_000, "1h0m0s"), (-5_000_000_000, "-5s"), (90_061_000_000_001, "25h1m1.000000001s"),
])
def test_duration_strings(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_duration(text) == ns
    wire = encode_message(f"{META}.Duration", text)
    assert wire == vfield(1, ns)
    assert decode_message(f"{META}.Duration", wire) == text


def test_duration_parse_variants() -> None:
    assert parse_duration("1.5h") == 5_400_000_000_000
    assert parse_duration("2h45m") == 9_900_000_000_000
    assert parse_duration("300us") == 300_000
    assert parse_duration("0") == 0
    for bad in ("", "5", "1x", "h", "1.2.3s"):
        with pytest.raises(ProtobufError):
            parse_duration(bad)


def test_crd_schema_roundtrip() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "listKind": "WidgetList", "shortNames": ["wg"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "required": ["spec"],
                    "properties": {
                        "spec": {"type": "object",
                                 "properties": {
                                     "size": {"type": "integer", "minimum": 1.0, "maximum": 10.5,
                                              "default": 3},
                                     "mode": {"type": "string", "enum": ["a", "b", None]},
                                     "tags": {"type": "array", "items": {"type": "string"},
                                              "x-kubernetes-list-type": "set"},
                                     "extra": {"type": "object",
                                               "additionalProperties": {"type": "string"}},
                                     "port": {"x-kubernetes-int-or-string": True,
                                              "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                     "ref": {"$ref": "#/definitions/x"},
                                 },
                                 "additionalProperties": False,
                                 "x-kubernetes-validations": [{"rule": "self.size > 0",
                                                               "message": "positive"}]},
                    },
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size",
                                                         "statusReplicasPath": ".status.size"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                              "jsonPath": ".spec.size"}],
            }],
            "conversion": {"strategy": "None"},
        },
    }
    assert roundtrip(crd) == crd


def test_list_wrappers() -> None:
    res = {"apiVersion": "v1", "kind": "APIResourceList", "groupVersion": "apps/v1",
           "resources": [{"name": "deployments", "singularName": "deployment", "namespaced": True,
                          "kind": "Deployment", "verbs": ["get", "list"], "shortNames": ["deploy"]}]}
    assert roundtrip(res) == res
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "metadata": {},
              "spec": {"user": "alice", "groups": ["g"], "extra": {"scopes": ["a", "b"]},
                       "resourceAttributes": {"verb": "get", "resource": "pods"}},
              "status": {"allowed": True}}
    assert roundtrip(review) == review


def test_omitempty_zero_scalars_dropped_pointer_zero_kept() -> None:
    # ContainerPort.hostPort is a non-pointer omitempty int32: a written 0 is dropped.
    # PodSpec.terminationGracePeriodSeconds is a pointer: a written 0 is kept.
    port = lfield(1, "") + vfield(2, 0) + vfield(3, 80)
    assert decode_message("k8s.io.api.core.v1.ContainerPort", port) == {"containerPort": 80}
    spec = vfield(4, 0)
    assert decode_message("k8s.io.api.core.v1.PodSpec", spec) == {"terminationGracePeriodSeconds": 0}


# --- watch framing

def test_watch_event_framing() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"},
          "data": {"k": "v"}}
    frame = pb.encode_watch_event("ADDED", cm)
    n = int.from_bytes(frame[:4], "big")
    assert n == len(frame) - 4
    event = frame[4:]
    # WatchEvent{1: type, 2: RawExtension{1: enveloped object}}
    assert event == lfield(1, "ADDED") + lfield(2, lfield(1, encode(cm)))
    assert pb.decode_watch_event(frame) == ("ADDED", cm)
    bookmark = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"resourceVersion": "8",
                             "annotations": {"k8s.io/initial-events-end": "true"}}}
    stream = frame + pb.encode_watch_event("BOOKMARK", bookmark)
    assert list(pb.iter_watch_events(stream)) == [("ADDED", cm), ("BOOKMARK", bookmark)]
    # The event message itself is a WatchEvent; decode_message sees through it.
    assert decode_message(f"{META}.WatchEvent", event) == {"type": "ADDED", "object": cm}


def test_watch_error_event_carries_status() -> None:
    status = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
              "reason": "Expired", "code": 410, "message": "too old resource version"}
    assert pb.decode_watch_event(pb.encode_watch_event("ERROR", status)) == ("ERROR", status)


def test_watch_framing_errors() -> None:
    frame = pb.encode_watch_event("ADDED", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": "n"}})
    with pytest.raises(ProtobufError):
        list(pb.iter_watch_events(frame[:-1]))
    with pytest.raises(ProtobufError):
        list(pb.iter_watch_events(frame + b"\x00\x00"))
    with pytest.raises(ProtobufError):
        pb.decode_watch_event(frame + frame)


# --- lookup and API surface

def test_supports_and_type_names() -> None:
    assert pb.PROTOBUF_CONTENT_TYPE == "application/vnd.kubernetes.protobuf"
    assert pb.PROTOBUF_WATCH_CONTENT_TYPE == "application/vnd.kubernetes.protobuf;stream=watch"
    assert pb.supports("v1", "Pod")
    assert pb.supports("apps/v1", "Deployment")
    assert pb.supports("batch/v1", "CronJob")
    assert pb.supports("rbac.authorization.k8s.io/v1", "ClusterRole")
    assert pb.supports("meta.k8s.io/v1", "PartialObjectMetadataList")
    assert pb.supports("v1", "WatchEvent")
    assert not pb.supports("example.com/v1", "Widget")
    assert not pb.supports("v1", "Deployment")
    assert pb.message_type("apiextensions.k8s.io/v1", "CustomResourceDefinition") == (
        "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    assert pb.message_type("apiregistration.k8s.io/v1", "APIService") == (
        "k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIService")
    assert pb.message_type("v1", "Namespace") == "k8s.io.api.core.v1.Namespace"


def test_encode_envelope_layout() -> None:
    body = encode({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
    raw = lfield(1, lfield(1, "foo"))
    assert body == envelope("v1", "Namespace", raw)


def test_none_values_are_skipped() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": None},
           "spec": None}
    assert decode(encode(obj)) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}


# --- malformed input

@pytest.mark.parametrize("body", [
    b"",
    b"k8s",
    b"{\"kind\":\"Namespace\"}",
    b"k8s\x01" + lfield(1, lfield(1, "v1") + lfield(2, "Namespace")),
    b"k8s\x00\x0a",                                    # truncated length
    b"k8s\x00\x0a\x05\x0a\x02v1",                      # length beyond end
    b"k8s\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # overlong varint
    b"k8s\x00" + lfield(2, b""),                       # no typeMeta
    envelope("v1", "", b""),                           # no kind
    envelope("example.com/v1", "Widget", b""),         # no protobuf type
    envelope("v1", "Namespace", b"\x0a\x05\x0a\x01"),  # truncated inner message
    envelope("v1", "Namespace", vfield(1, 5)),         # metadata as a varint: wrong wire type
    envelope("v1", "Namespace", b"\x0b"),              # group wire type
    envelope("v1", "Namespace", b"\x00\x00"),          # field number 0
    envelope("apps/v1", "ControllerRevision", lfield(2, lfield(1, b"{not json"))),
    b"k8s\x00" + lfield(1, lfield(1, "v1") + lfield(2, "Namespace")) + lfield(3, "gzip"),
])
def test_malformed_input_raises(body: bytes) -> None:
    with pytest.raises(ProtobufError):
        decode(body)


def test_protobuf_error_is_value_error() -> None:
    assert issubclass(ProtobufError, ValueError)


@pytest.mark.parametrize("obj", [
    {"kind": "Namespace"},
    {"apiVersion": "v1"},
    {"apiVersion": "example.com/v1", "kind": "Widget"},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": "nope"},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": 5}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generation": "5"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"finalizers": "x"}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": ["x"]}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"creationTimestamp": "yesterday"}},
    {"apiVersion": "v1", "kind": "Secret", "data": {"k": "not base64!"}},
    {"apiVersion": "v1", "kind": "Pod", "spec": {"hostNetwork": "yes"}},
])
def test_unencodable_objects_raise(obj: dict) -> None:
    with pytest.raises(ProtobufError):
        encode(obj)


def test_deep_nesting_is_a_protobuf_error() -> None:
    # JSONSchemaProps.not (field 28) nests without bound; a hostile body must not crash.
    body = b""
    for _ in range(5000):
        body = lfield(28, body)
    name = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"
    with pytest.raises(ProtobufError):
        decode_message(name, body)
