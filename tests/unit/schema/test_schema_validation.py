"""Structural validation against the schemas, and ObjectMeta validation messages."""

from __future__ import annotations

import copy

from kybernetes.api import validation as v
from kybernetes.registry.base import Cause

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"

GOOD = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "creationTimestamp": None,
                 "annotations": {"example.com/note": "x"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 0.25}},
                    "env": [{"name": "A", "value": "1"}],
                    "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
                }],
                "terminationGracePeriodSeconds": 30,
            },
        },
    },
    "status": {"replicas": 0, "conditions": [{"type": "Available", "status": "True",
                                               "lastUpdateTime": "2026-01-02T03:04:05Z"}]},
}


def _dep(**spec_changes: object) -> dict:
    d = copy.deepcopy(GOOD)
    d["spec"].update(spec_changes)
    return d


def test_good_deployment_is_clean() -> None:
    assert v.validate_schema(GOOD, DEPLOYMENT, strict_unknown=True) == ([], [])


def test_nulls_are_accepted_and_dropped() -> None:
    d = _dep(replicas=None, paused=None)
    d["metadata"]["labels"]["x"] = None
    d["spec"]["template"]["spec"]["containers"][0]["args"] = [None, "a"]
    assert v.validate_schema(d, DEPLOYMENT, strict_unknown=True) == ([], [])
    v.drop_nulls(d, DEPLOYMENT)
    assert "replicas" not in d["spec"] and "paused" not in d["spec"]
    assert d["metadata"]["labels"]["x"] == ""
    assert "creationTimestamp" not in d["metadata"]
    assert d["spec"]["template"]["spec"]["containers"][0]["args"] == ["", "a"]


def test_missing_required() -> None:
    d = _dep()
    del d["spec"]["selector"]
    c = d["spec"]["template"]["spec"]["containers"][0]
    del c["name"]
    c["ports"][0].pop("containerPort")  # an int: zero is a decodable value, left to semantic checks
    errors, unknown = v.validate_schema(d, DEPLOYMENT, strict_unknown=True)
    assert unknown == []
    assert errors == [
        Cause("FieldValueRequired", "spec.template.spec.containers[0].name", "Required value"),
        Cause("FieldValueRequired", "spec.selector", "Required value"),
    ]
    errors, _ = v.validate_schema({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
                                  DEPLOYMENT, strict_unknown=True)
    assert errors == [Cause("FieldValueRequired", "spec", "Required value")]


def test_required_not_checked_under_status() -> None:
    d = _dep()
    d["status"]["conditions"] = [{"reason": "x"}]  # type and status missing
    assert v.validate_schema(d, DEPLOYMENT, strict_unknown=True) == ([], [])


def test_wrong_types_report_go_decoding_errors() -> None:
    d = _dep(replicas="3", paused="yes", minReadySeconds=1.5, revisionHistoryLimit=2**40)
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["image"] = 7
    c["args"] = "not-a-list"
    c["ports"][0]["containerPort"] = True
    c["resources"]["limits"]["memory"] = "12 parsecs"
    c["livenessProbe"]["httpGet"]["port"] = 1.5
    d["metadata"]["labels"] = ["app"]
    d["metadata"]["creationTimestamp"] = "yesterday"
    errors, unknown = v.validate_schema(d, DEPLOYMENT, strict_unknown=True)
    assert unknown == []
    got = {e.field: e.message for e in errors}
    assert all(e.reason == "FieldValueInvalid" for e in errors)
    assert got == {
        "metadata.labels": "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string",
        "metadata.creationTimestamp": 'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"',
        "spec.replicas": "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
        "spec.paused": "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool",
        "spec.minReadySeconds": "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.minReadySeconds of type int32",
        "spec.revisionHistoryLimit": f"json: cannot unmarshal number {2**40} into Go struct field DeploymentSpec.spec.revisionHistoryLimit of type int32",
        "spec.template.spec.containers[0].image": "json: cannot unmarshal number 7 into Go struct field Container.spec.template.spec.containers.image of type string",
        "spec.template.spec.containers[0].args": "json: cannot unmarshal string into Go struct field Container.spec.template.spec.containers.args of type []string",
        "spec.template.spec.containers[0].ports[0].containerPort": "json: cannot unmarshal bool into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32",
        "spec.template.spec.containers[0].resources.limits[memory]": "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        "spec.template.spec.containers[0].livenessProbe.httpGet.port": "json: cannot unmarshal number 1.5 into Go struct field HTTPGetAction.spec.template.spec.containers.livenessProbe.httpGet.port of type int32",
    }
    assert v.decode_errors(errors) == errors
    assert v.cannot_handle_message("Deployment", "v1", errors[0].message).startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal')


def test_struct_given_a_scalar() -> None:
    errors, _ = v.validate_schema(_dep(template="x"), DEPLOYMENT, strict_unknown=True)
    assert errors == [Cause("FieldValueInvalid", "spec.template",
                            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type v1.PodTemplateSpec")]


def test_secret_data_must_be_base64() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"ok": "aGVsbG8=", "bad": "not base64!"}}
    errors, _ = v.validate_schema(secret, "io.k8s.api.core.v1.Secret", strict_unknown=True)
    assert errors == [Cause("FieldValueInvalid", "data[bad]", "illegal base64 data at input byte 3")]


def test_unknown_fields_with_paths() -> None:
    d = _dep(replica=2)
    d["metadata"]["lables"] = {}
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["Name"] = "http"  # case matters
    d["spec"]["strategy"]["rollingUpdate"]["extra"] = {"nested": 1}
    errors, unknown = v.validate_schema(d, DEPLOYMENT, strict_unknown=True)
    assert errors == []
    assert unknown == [  # document order
        'unknown field "metadata.lables"',
        'unknown field "spec.strategy.rollingUpdate.extra"',
        'unknown field "spec.template.spec.containers[0].ports[0].Name"',
        'unknown field "spec.template.spec.containers[0].imagePullPolice"',
        'unknown field "spec.replica"',
    ]
    assert v.strict_decoding_message(unknown[:2]) == (
        'strict decoding error: unknown field "metadata.lables", unknown field "spec.strategy.rollingUpdate.extra"')
    # fieldValidation=Ignore: nothing collected
    assert v.validate_schema(d, DEPLOYMENT, strict_unknown=False) == ([], [])


def test_free_form_fields_accept_anything() -> None:
    rev = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
           "revision": 1, "data": {"anything": [1, {"goes": True}]}}
    assert v.validate_schema(rev, "io.k8s.api.apps.v1.ControllerRevision", strict_unknown=True) == ([], [])
    crd_schema = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                                            "default": {"a": [1]}}}}
    errors, unknown = v.validate_schema(crd_schema, "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
                                        strict_unknown=True)
    assert (errors, unknown) == ([], [])


# ---------------------------------------------------------------- string checks
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
                   "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def test_string_checks() -> None:
    assert v.is_dns1123_subdomain("web.example-1") == []
    assert v.is_dns1123_subdomain("Web") == [SUBDOMAIN_MSG]
    assert v.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert v.is_dns1123_label("kube-system") == []
    assert v.is_dns1123_label("a.b") == ["must not contain dots"]
    assert v.is_dns1123_label("-a") == [LABEL_MSG]
    assert v.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]
    assert v.is_dns1035_label("1abc") == [
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
        "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation "
        "is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    assert v.is_qualified_name("app.kubernetes.io/name") == []
    assert v.is_qualified_name("Foo_Bar.1") == []
    assert v.is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert v.is_qualified_name("Example.com/x") == ["prefix part " + SUBDOMAIN_MSG]
    assert v.is_qualified_name("x/") == ["name part must be non-empty", NAME_PART_MSG]
    assert v.is_qualified_name("a" * 64) == ["name part must be no more than 63 bytes"]
    assert v.is_qualified_name("a/b/c") == [
        "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
        "'example.com/MyName')"]
    assert v.is_valid_label_value("") == []
    assert v.is_valid_label_value("v1.2_x") == []
    assert v.is_valid_label_value("a b") == [LABEL_VALUE_MSG]
    assert v.is_valid_label_value("a" * 64) == ["must be no more than 63 bytes"]
    assert v.is_path_segment_name("..") == ["may not be '..'"]
    assert v.is_path_segment_name("a/b%") == ["may not contain '/'", "may not contain '%'"]


# ---------------------------------------------------------------- ObjectMeta
def _meta(**meta: object) -> dict:
    return {"metadata": meta}


def test_meta_name_required_unless_generate_name() -> None:
    assert v.validate_object_meta(_meta(namespace="default"), namespaced=True) == [
        Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")]
    assert v.validate_object_meta(_meta(generateName="web-", namespace="default"), namespaced=True) == []


def test_meta_name_formats() -> None:
    assert v.validate_object_meta(_meta(name="Web", namespace="default"), namespaced=True) == [
        Cause("FieldValueInvalid", "metadata.name", 'Invalid value: "Web": ' + SUBDOMAIN_MSG)]
    assert v.validate_object_meta(_meta(name="a.b"), namespaced=False, name_format="dns1123-label") == [
        Cause("FieldValueInvalid", "metadata.name", 'Invalid value: "a.b": must not contain dots')]
    assert v.validate_object_meta(_meta(name="system:masters"), namespaced=False, name_format="path-segment") == []
    assert v.validate_object_meta(_meta(name="a/b"), namespaced=False, name_format="path-segment") == [
        Cause("FieldValueInvalid", "metadata.name", "Invalid value: \"a/b\": may not contain '/'")]
    # a generateName prefix may end with '-'; a bad one is reported on generateName
    assert v.validate_object_meta(_meta(generateName="Web-", namespace="d"), namespaced=True) == [
        Cause("FieldValueInvalid", "metadata.generateName", 'Invalid value: "Web-": ' + SUBDOMAIN_MSG)]


def test_meta_namespace_by_scope() -> None:
    assert v.validate_object_meta(_meta(name="x"), namespaced=True) == [
        Cause("FieldValueRequired", "metadata.namespace", "Required value")]
    assert v.validate_object_meta(_meta(name="x", namespace="Bad_NS"), namespaced=True) == [
        Cause("FieldValueInvalid", "metadata.namespace", 'Invalid value: "Bad_NS": ' + LABEL_MSG)]
    assert v.validate_object_meta(_meta(name="x", namespace="default"), namespaced=False) == [
        Cause("FieldValueForbidden", "metadata.namespace", "Forbidden: not allowed on this type")]


def test_meta_labels_and_annotations() -> None:
    errs = v.validate_object_meta(_meta(name="x", labels={"-bad": "ok", "good": "bad value"},
                                        annotations={"Example.COM/Key": "fine", "x/": "v"}), namespaced=False)
    assert errs == [
        Cause("FieldValueInvalid", "metadata.labels", 'Invalid value: "-bad": ' + NAME_PART_MSG),
        Cause("FieldValueInvalid", "metadata.labels", 'Invalid value: "bad value": ' + LABEL_VALUE_MSG),
        Cause("FieldValueInvalid", "metadata.annotations", 'Invalid value: "x/": name part must be non-empty'),
        Cause("FieldValueInvalid", "metadata.annotations", 'Invalid value: "x/": ' + NAME_PART_MSG),
    ]
    big = {"a": "x" * (256 * 1024)}
    assert v.validate_object_meta(_meta(name="x", annotations=big), namespaced=False) == [
        Cause("FieldValueTooLong", "metadata.annotations", "Too long: must have at most 262144 bytes")]
    assert v.validate_object_meta(_meta(name="x", annotations={"a": "x" * (256 * 1024 - 1)}), namespaced=False) == []


def test_meta_finalizers_owner_references_generation() -> None:
    errs = v.validate_object_meta(_meta(
        name="x", generation=-1, finalizers=["orphan", "foregroundDeletion", "bad finalizer"],
        ownerReferences=[{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": True},
                         {"apiVersion": "", "kind": "Deployment", "name": "d", "uid": "u2", "controller": True}],
    ), namespaced=False)
    assert [(e.reason, e.field) for e in errs] == [
        ("FieldValueInvalid", "metadata.generation"),
        ("FieldValueRequired", "metadata.ownerReferences[1].apiVersion"),
        ("FieldValueInvalid", "metadata.ownerReferences"),
        ("FieldValueInvalid", "metadata.finalizers"),
        ("FieldValueInvalid", "metadata.finalizers"),
    ]
    assert errs[0].message == "Invalid value: -1: must be greater than or equal to 0"
    assert errs[1].message == "Required value: must not be empty"
    assert errs[2].message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/rs and Deployment/d')
    assert errs[3].message.startswith('Invalid value: "bad finalizer": name part must consist of')
    assert errs[4].message == ('Invalid value: []string{"orphan", "foregroundDeletion", "bad finalizer"}: '
                               "finalizer orphan and foregroundDeletion cannot be both set")


def test_by_gvk_and_pruning() -> None:
    d = _dep(replica=2)
    d["spec"]["template"]["spec"]["containers"][0]["bogus"] = {"x": 1}
    errors, unknown = v.validate_schema_for(d, "apps", "v1", "Deployment")
    assert errors == [] and len(unknown) == 2
    assert v.validate_schema_for({"spec": {"anything": 1}}, "example.com", "v1", "Widget") == ([], [])
    removed = v.prune_unknown(d, "apps", "v1", "Deployment")
    assert removed == ["spec.replica", "spec.template.spec.containers[0].bogus"]
    assert v.validate_schema(d, DEPLOYMENT) == ([], [])
    assert d["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}  # known fields kept
    assert v.prune_unknown({"a": 1}, "example.com", "v1", "Widget") == []
