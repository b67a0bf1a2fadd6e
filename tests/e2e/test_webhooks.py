"""Admission webhooks end to end: a real `kyb server`, a real HTTPS webhook server on
127.0.0.1 (certificate from a throw-away test CA), kubectl and the official client.

Every webhook here is scoped by a namespaceSelector to the test's own namespace, so the
server's controllers never meet them."""

from __future__ import annotations

import json
import secrets
import socket

import pytest
from admission_e2e import deleted_after, dry_run_create_refused, labelled_namespace, requests_named, until
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fixtures.webhook_server import WebhookServer, json_patch, make_pki

GROUP = "admissionregistration.k8s.io"


@pytest.fixture(scope="module")
def hooks(tmp_path_factory):
    srv = WebhookServer(make_pki(dns_names=("hooksvc.default.svc",))).start(tmp_path_factory.mktemp("webhook"))
    yield srv
    srv.stop()


@pytest.fixture
def ns(api):
    """A namespace carrying a label unique to this test (the webhooks select it)."""
    with labelled_namespace(api, "wh", "wh-test") as name:
        yield name


@pytest.fixture
def configs(api):
    """Create webhook configurations (as dicts) and delete them after the test."""
    adm = client.AdmissionregistrationV1Api(api)
    with deleted_after() as later:
        def create(kind: str, name: str, webhooks: list[dict]) -> dict:
            body = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "webhooks": webhooks}
            if kind == "MutatingWebhookConfiguration":
                out = adm.create_mutating_webhook_configuration(body)
                later(lambda: adm.delete_mutating_webhook_configuration(name))
            else:
                out = adm.create_validating_webhook_configuration(body)
                later(lambda: adm.delete_validating_webhook_configuration(name))
            return api.sanitize_for_serialization(out)

        yield create


def hook(name: str, url: str, ns: str, *, ca: str, resources=("configmaps",), operations=("CREATE",), **extra) -> dict:
    spec = {
        "name": name, "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": list(operations), "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": list(resources)}],
        "namespaceSelector": {"matchLabels": {"wh-test": ns}},
        "sideEffects": "None", "admissionReviewVersions": ["v1"],
    }
    spec.update(extra)
    return spec


def cm(name: str, labels: dict | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": "v"})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_of(fn) -> ApiException:
    with pytest.raises(ApiException) as e:
        fn()
    return e.value


# ---------------------------------------------------------------------- the API objects
def test_served_with_discovery_defaults_and_table(kyb, hooks):
    out = kyb.kubectl("api-resources", "--api-group", GROUP, "-o", "wide").stdout
    for res, kind in (("mutatingwebhookconfigurations", "MutatingWebhookConfiguration"),
                      ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration")):
        line = next(ln for ln in out.splitlines() if ln.startswith(res))
        assert f"{GROUP}/v1" in line and "false" in line and kind in line and "api-extensions" in line
    name = f"defaults-{secrets.token_hex(3)}"
    manifest = {"apiVersion": f"{GROUP}/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": name},
                "webhooks": [{"name": "a.kyb.test", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                              "clientConfig": {"service": {"namespace": "default", "name": "x"}},
                              "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                         "resources": ["pods"]}]}]}
    kyb.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        got = json.loads(kyb.kubectl("get", "mutatingwebhookconfiguration", name, "-o", "json").stdout)
        h = got["webhooks"][0]
        assert (h["failurePolicy"], h["matchPolicy"], h["timeoutSeconds"], h["reinvocationPolicy"]) == \
            ("Fail", "Equivalent", 10, "Never")
        assert h["namespaceSelector"] == {} and h["objectSelector"] == {}
        assert h["rules"][0]["scope"] == "*" and h["clientConfig"]["service"]["port"] == 443
        assert got["metadata"]["generation"] == 1
        table = kyb.kubectl("get", "mutatingwebhookconfigurations", name).stdout.splitlines()
        assert table[0].split() == ["NAME", "WEBHOOKS", "AGE"] and table[1].split()[:2] == [name, "1"]
    finally:
        kyb.kubectl("delete", "mutatingwebhookconfiguration", name)
    p = kyb.kubectl("get", "mutatingwebhookconfiguration", name, check=False)
    assert p.returncode != 0 and f'mutatingwebhookconfigurations.admissionregistration.k8s.io "{name}" not found' \
        in p.stderr


def test_invalid_configuration_is_refused_with_field_causes(api, kyb):
    adm = client.AdmissionregistrationV1Api(api)
    body = {"metadata": {"name": "bad-config"}, "webhooks": [
        {"name": "short", "sideEffects": "Some", "admissionReviewVersions": ["v1"], "timeoutSeconds": 31,
         "clientConfig": {"url": "http://127.0.0.1:1/x"},
         "rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*/*", "pods"]}]}]}
    e = error_of(lambda: adm.create_validating_webhook_configuration(body))
    assert e.status == 422
    status = json.loads(e.body)
    causes = {(c["field"], c["message"]) for c in status["details"]["causes"]}
    assert ("webhooks[0].name", 'Invalid value: "short": should be a domain with at least three segments separated by dots') in causes
    assert ("webhooks[0].sideEffects", 'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"') in causes
    assert ("webhooks[0].timeoutSeconds", "Invalid value: 31: the timeout value must be between 1 and 30 seconds") in causes
    assert ("webhooks[0].clientConfig.url", "Invalid value: \"http\": 'https' is the only allowed URL scheme") in causes
    assert ("webhooks[0].rules[0].operations",
            "Invalid value: []admissionregistration.OperationType{\"*\", \"CREATE\"}: if '*' is present, must not specify other operations") in causes
    assert ("webhooks[0].rules[0].resources",
            "Invalid value: []string{\"*/*\", \"pods\"}: if '*/*' is present, must not specify other resources") in causes
    assert status["message"].startswith('ValidatingWebhookConfiguration.admissionregistration.k8s.io "bad-config" is invalid: [')
    assert error_of(lambda: adm.read_validating_webhook_configuration("bad-config")).status == 404
    # duplicate webhook names
    dup = {"name": "dup.kyb.test", "sideEffects": "None", "admissionReviewVersions": ["v1"],
           "clientConfig": {"url": "https://127.0.0.1:1/x"}}
    p = kyb.kubectl("create", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": f"{GROUP}/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "dups"},
         "webhooks": [dup, dup]}))
    assert p.returncode != 0 and 'webhooks[1].name: Duplicate value: "dup.kyb.test"' in p.stderr


# ---------------------------------------------------------------------- mutating
def test_mutating_webhook_adds_label_and_sees_the_request(api, kyb, hooks, ns, configs):
    def add_label(req):
        out = json_patch([{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "webhook"}}]
                         if not (req["object"]["metadata"].get("labels")) else
                         [{"op": "add", "path": "/metadata/labels/mutated-by", "value": "webhook"}])
        out["warnings"] = ["mutated by the test webhook"]
        return out

    path = f"/mutate-{ns}"
    hooks.route(path, add_label)
    configs("MutatingWebhookConfiguration", f"mut-{ns}", [hook("label.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle)])
    core = client.CoreV1Api(api)
    until(lambda: core.create_namespaced_config_map(ns, cm("probe"), dry_run="All").metadata.labels,
          "the mutating webhook to take effect")
    p = kyb.kubectl("create", "configmap", "one", "-n", ns, "--from-literal=a=b")
    assert "Warning: mutated by the test webhook" in p.stderr
    got = core.read_namespaced_config_map("one", ns)
    assert got.metadata.labels == {"mutated-by": "webhook"}
    created = core.create_namespaced_config_map(ns, cm("two", {"own": "label"}))
    assert created.metadata.labels == {"own": "label", "mutated-by": "webhook"}
    # the AdmissionReview the webhook received for "one"
    req = requests_named(hooks, path, "one")[0]
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert req["operation"] == "CREATE" and req["namespace"] == ns and req["dryRun"] is False
    assert req["userInfo"]["username"] == "kyb-admin" and "system:masters" in req["userInfo"]["groups"]
    assert req["object"]["data"] == {"a": "b"} and req["oldObject"] is None
    assert req["options"]["kind"] == "CreateOptions" and req["options"]["apiVersion"] == "meta.k8s.io/v1"
    assert len(req["uid"]) == 36 and "subResource" not in req
    # a configmap in a namespace the selector does not pick is left alone
    kyb.kubectl("create", "configmap", "elsewhere", "-n", "default", "--from-literal=a=b")
    try:
        assert not core.read_namespaced_config_map("elsewhere", "default").metadata.labels
    finally:
        core.delete_namespaced_config_map("elsewhere", "default")


def test_reinvocation_if_needed(api, hooks, ns, configs):
    first, second = f"/first-{ns}", f"/second-{ns}"
    hooks.route(first, lambda req: {"allowed": True})
    hooks.route(second, lambda req: json_patch([{"op": "add", "path": "/data/added", "value": "yes"}])
                if "added" not in (req["object"].get("data") or {}) else {"allowed": True})
    configs("MutatingWebhookConfiguration", f"reinv-{ns}", [
        hook("first.kyb.test", hooks.url(first), ns, ca=hooks.pki.ca_bundle, reinvocationPolicy="IfNeeded"),
        hook("second.kyb.test", hooks.url(second), ns, ca=hooks.pki.ca_bundle)])
    core = client.CoreV1Api(api)
    until(lambda: "added" in (core.create_namespaced_config_map(ns, cm("probe"), dry_run="All").data or {}),
          "the webhooks to take effect")
    core.create_namespaced_config_map(ns, cm("re"))
    calls = requests_named(hooks, first, "re")
    # called, then called again with the object the later webhook changed
    assert len(calls) == 2 and "added" not in calls[0]["object"]["data"] and calls[1]["object"]["data"]["added"] == "yes"
    assert len(requests_named(hooks, second, "re")) == 1


def test_bad_patch_is_an_internal_error_and_nothing_is_written(api, kyb, hooks, ns, configs):
    path = f"/badpatch-{ns}"
    hooks.route(path, lambda req: json_patch([{"op": "remove", "path": "/metadata/labels/missing"}])
                if (req["object"]["metadata"].get("labels") or {}).get("remove") else
                {"allowed": True, "patchType": "JSONPatch", "patch": "eyJub3QiOiAiYSBsaXN0In0="})  # {"not": "a list"}
    configs("MutatingWebhookConfiguration", f"badpatch-{ns}", [
        hook("badpatch.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle, failurePolicy="Ignore")])
    core = client.CoreV1Api(api)

    e = until(dry_run_create_refused(core, ns, cm("probe")), "the webhook to take effect")
    assert e.status == 500 and json.loads(e.body)["reason"] == "InternalError"
    assert "Internal error occurred: json: cannot unmarshal object into Go value of type jsonpatch.Patch" \
        in json.loads(e.body)["message"]
    p = kyb.kubectl("create", "-n", ns, "-f", "-", check=False, input=json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rm", "labels": {"remove": "1"}}}))
    assert p.returncode != 0 and "Error from server (InternalError)" in p.stderr and "Internal error occurred:" in p.stderr
    assert "Unable to remove nonexistent key: missing" in p.stderr
    assert error_of(lambda: core.read_namespaced_config_map("rm", ns)).status == 404


# ---------------------------------------------------------------------- validating
def test_validating_webhook_denies_with_message_and_code(api, kyb, hooks, ns, configs):
    path = f"/deny-{ns}"

    def judge(req):
        obj = req["object"] or req["oldObject"]
        if (obj["data"] or {}).get("forbidden"):
            return {"allowed": False, "status": {"code": 403, "reason": "Forbidden",
                                                 "message": "data.forbidden is not allowed here"}}
        return {"allowed": True}

    hooks.route(path, judge)
    configs("ValidatingWebhookConfiguration", f"deny-{ns}", [
        hook("deny.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle, operations=("CREATE", "UPDATE"))])
    core = client.CoreV1Api(api)
    bad = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bad"), data={"forbidden": "x"})

    e = until(dry_run_create_refused(core, ns, bad), "the validating webhook to take effect")
    status = json.loads(e.body)
    assert e.status == 403 and status["reason"] == "Forbidden"
    assert status["message"] == 'admission webhook "deny.kyb.test" denied the request: data.forbidden is not allowed here'
    p = kyb.kubectl("create", "configmap", "bad", "-n", ns, "--from-literal=forbidden=x", check=False)
    assert p.returncode != 0 and p.stderr.strip() == (
        'error: failed to create configmap: admission webhook "deny.kyb.test" denied the request: '
        'data.forbidden is not allowed here')
    assert error_of(lambda: core.read_namespaced_config_map("bad", ns)).status == 404
    # UPDATE: the webhook sees old and new; the stored object is unchanged after a denial
    kyb.kubectl("create", "configmap", "good", "-n", ns, "--from-literal=a=b")
    p = kyb.kubectl("patch", "configmap", "good", "-n", ns, "-p", '{"data":{"forbidden":"y"}}', check=False)
    assert p.returncode != 0 and 'admission webhook "deny.kyb.test" denied the request' in p.stderr
    assert core.read_namespaced_config_map("good", ns).data == {"a": "b"}
    upd = [r["request"] for r in hooks.requests_to(path) if r["request"]["operation"] == "UPDATE"][-1]
    assert upd["oldObject"]["data"] == {"a": "b"} and upd["object"]["data"] == {"a": "b", "forbidden": "y"}
    assert upd["options"]["kind"] == "UpdateOptions"


def test_failure_policy_fail_and_ignore_when_the_webhook_is_down(api, kyb, hooks, ns, configs):
    port = closed_port()
    record = f"/record-{ns}"
    hooks.route(record, lambda req: {"allowed": True})
    down = f"https://127.0.0.1:{port}/down"
    # Ignore: the request goes through (the recording webhook of the same configuration
    # proves the configuration is in effect)
    configs("ValidatingWebhookConfiguration", f"ignore-{ns}", [
        hook("down-ignored.kyb.test", down, ns, ca=hooks.pki.ca_bundle, failurePolicy="Ignore"),
        hook("record.kyb.test", hooks.url(record), ns, ca=hooks.pki.ca_bundle)])
    core = client.CoreV1Api(api)
    until(lambda: core.create_namespaced_config_map(ns, cm("probe"), dry_run="All")
          and hooks.requests_to(record), "the configuration to take effect")
    core.create_namespaced_config_map(ns, cm("through"))
    # Fail: 500 with upstream's message, nothing written
    configs("ValidatingWebhookConfiguration", f"fail-{ns}", [
        hook("down.kyb.test", down, ns, ca=hooks.pki.ca_bundle)])

    e = until(dry_run_create_refused(core, ns, cm("probe")), "the failing webhook to take effect")
    assert e.status == 500 and json.loads(e.body)["reason"] == "InternalError"
    p = kyb.kubectl("create", "configmap", "blocked", "-n", ns, check=False)
    assert p.returncode != 0
    assert (f'Internal error occurred: failed calling webhook "down.kyb.test": failed to call webhook: '
            f'Post "https://127.0.0.1:{port}/down?timeout=10s": dial tcp 127.0.0.1:{port}: connect: '
            f'connection refused') in p.stderr
    assert error_of(lambda: core.read_namespaced_config_map("blocked", ns)).status == 404


def test_timeout_and_untrusted_certificate(api, hooks, ns, configs):
    slow, record = f"/slow-{ns}", f"/rec-{ns}"
    hooks.route(slow, lambda req: hooks.hang())
    hooks.route(record, lambda req: {"allowed": True})
    configs("ValidatingWebhookConfiguration", f"slow-{ns}", [
        hook("slow.kyb.test", hooks.url(slow), ns, ca=hooks.pki.ca_bundle, timeoutSeconds=1),
        hook("rec.kyb.test", hooks.url(record), ns, ca=hooks.pki.ca_bundle)])
    core = client.CoreV1Api(api)

    e = until(dry_run_create_refused(core, ns, cm("probe")), "the slow webhook to take effect")
    assert e.status == 500 and json.loads(e.body)["message"] == (
        f'Internal error occurred: failed calling webhook "slow.kyb.test": failed to call webhook: '
        f'Post "{hooks.url(slow)}?timeout=1s": context deadline exceeded')
    # a CA bundle that did not sign the server's certificate, failing open
    other_ca = make_pki().ca_bundle
    configs("MutatingWebhookConfiguration", f"tls-{ns}", [
        hook("tls.kyb.test", hooks.url(record), ns, ca=other_ca, failurePolicy="Fail")])

    probe = dry_run_create_refused(core, ns, cm("probe2", {"x": "y"}))

    def tls_fails():
        e = probe()
        return e if e is not None and "tls.kyb.test" in e.body else None

    e = until(tls_fails, "the TLS webhook to take effect")
    assert "x509: certificate signed by unknown authority" in json.loads(e.body)["message"]


def test_namespace_and_object_selectors(api, hooks, ns, configs):
    path = f"/sel-{ns}"
    # allows creates, denies every update it is sent
    hooks.route(path, lambda req: {"allowed": req["operation"] == "CREATE", "status": {"message": "selected"}})
    configs("ValidatingWebhookConfiguration", f"sel-{ns}", [
        hook("sel.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle, operations=("CREATE", "UPDATE"),
             objectSelector={"matchExpressions": [{"key": "check", "operator": "In", "values": ["me"]}]})])
    core = client.CoreV1Api(api)

    until(lambda: core.create_namespaced_config_map(ns, cm("probe", {"check": "me"}), dry_run="All")
          and requests_named(hooks, path, "probe"), "the selector webhook to take effect")
    core.create_namespaced_config_map(ns, cm("picked", {"check": "me"}))
    core.create_namespaced_config_map(ns, cm("plain", {"check": "not-me"}))
    assert len(requests_named(hooks, path, "picked")) == 1 and requests_named(hooks, path, "plain") == []
    # an update is judged when either the new or the old object is selected
    e = error_of(lambda: core.patch_namespaced_config_map("plain", ns, {"metadata": {"labels": {"check": "me"}}}))
    assert e.status == 400 and json.loads(e.body)["message"] == \
        'admission webhook "sel.kyb.test" denied the request: selected'
    e = error_of(lambda: core.patch_namespaced_config_map("picked", ns, {"metadata": {"labels": {"check": None}}}))
    assert e.status == 400
    assert core.read_namespaced_config_map("picked", ns).metadata.labels == {"check": "me"}
    core.patch_namespaced_config_map("plain", ns, {"data": {"other": "x"}})  # neither selected: not sent
    assert len(requests_named(hooks, path, "plain")) == 1
    # the same labels in a namespace the namespaceSelector does not pick: not sent
    other = f"{ns}-other"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        core.create_namespaced_config_map(other, cm("free", {"check": "me"}))
        assert requests_named(hooks, path, "free") == []
    finally:
        core.delete_namespace(other)


def test_dry_run_reaches_side_effect_free_webhooks_only_as_dry_run(api, hooks, ns, configs):
    path = f"/dry-{ns}"
    hooks.route(path, lambda req: {"allowed": True})
    configs("ValidatingWebhookConfiguration", f"dry-{ns}", [
        hook("dry.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle, sideEffects="NoneOnDryRun")])
    core = client.CoreV1Api(api)
    until(lambda: core.create_namespaced_config_map(ns, cm("dry"), dry_run="All") and requests_named(hooks, path, "dry"),
          "the webhook to take effect")
    req = requests_named(hooks, path, "dry")[-1]
    assert req["dryRun"] is True and req["options"]["dryRun"] == ["All"]
    assert error_of(lambda: core.read_namespaced_config_map("dry", ns)).status == 404


def test_service_reference_resolves_through_endpoints(api, hooks, ns, configs):
    """clientConfig.service: the Service's port, its Endpoints' address, TLS verified against
    <service>.<namespace>.svc (the test certificate names hooksvc.default.svc)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service("default", client.V1Service(
        metadata=client.V1ObjectMeta(name="hooksvc"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(name="https", port=8443, target_port=hooks.port)])))
    try:
        core.create_namespaced_endpoints("default", client.V1Endpoints(
            metadata=client.V1ObjectMeta(name="hooksvc"),
            subsets=[client.V1EndpointSubset(addresses=[client.V1EndpointAddress(ip="127.0.0.1")],
                                             ports=[client.CoreV1EndpointPort(name="https", port=hooks.port)])]))
        path = f"/svc-{ns}"
        hooks.route(path, lambda req: {"allowed": False, "status": {"code": 422, "message": "via the service"}})
        spec = hook("svc.kyb.test", "", ns, ca=hooks.pki.ca_bundle)
        spec["clientConfig"] = {"service": {"namespace": "default", "name": "hooksvc", "port": 8443, "path": path},
                                "caBundle": hooks.pki.ca_bundle}
        configs("ValidatingWebhookConfiguration", f"svc-{ns}", [spec])

        e = until(dry_run_create_refused(core, ns, cm("probe")), "the service webhook to take effect")
        assert e.status == 422 and json.loads(e.body)["message"] == \
            'admission webhook "svc.kyb.test" denied the request: via the service'
    finally:
        core.delete_namespaced_service("hooksvc", "default", _preload_content=False)
        try:
            core.delete_namespaced_endpoints("hooksvc", "default")
        except ApiException:
            pass


def test_delete_reaches_mutating_and_validating_webhooks_with_the_old_object(api, kyb, hooks, ns, configs):
    mut, val = f"/mutdel-{ns}", f"/valdel-{ns}"
    hooks.route(mut, lambda req: json_patch([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])
                if req["oldObject"]["metadata"]["name"] == "patched" else {"allowed": True})
    hooks.route(val, lambda req: {"allowed": req["oldObject"]["metadata"]["name"] != "kept",
                                  "status": {"code": 409, "reason": "Conflict", "message": "keep me"}})
    configs("MutatingWebhookConfiguration", f"mutdel-{ns}", [
        hook("mutdel.kyb.test", hooks.url(mut), ns, ca=hooks.pki.ca_bundle, operations=("DELETE",))])
    configs("ValidatingWebhookConfiguration", f"valdel-{ns}", [
        hook("valdel.kyb.test", hooks.url(val), ns, ca=hooks.pki.ca_bundle, operations=("DELETE",))])
    core = client.CoreV1Api(api)
    for name in ("kept", "patched", "gone", "probe"):
        core.create_namespaced_config_map(ns, cm(name))
    until(lambda: core.delete_namespaced_config_map("probe", ns, dry_run="All") and hooks.requests_to(val)
          and hooks.requests_to(mut), "the webhooks to take effect")
    p = kyb.kubectl("delete", "configmap", "kept", "-n", ns, check=False)
    assert p.returncode != 0 and 'admission webhook "valdel.kyb.test" denied the request: keep me' in p.stderr
    e = error_of(lambda: core.delete_namespaced_config_map("patched", ns))
    assert e.status == 500 and json.loads(e.body)["message"] == (
        'Internal error occurred: admission webhook "mutdel.kyb.test" attempted to modify the object, '
        'which is not supported for this operation')
    core.delete_namespaced_config_map("gone", ns)
    assert {c.metadata.name for c in core.list_namespaced_config_map(ns).items} >= {"kept", "patched"}
    req = requests_named(hooks, val, "gone")[-1]
    assert req["operation"] == "DELETE" and req["object"] is None and req["oldObject"]["metadata"]["name"] == "gone"
    assert req["options"]["kind"] == "DeleteOptions"


def test_match_conditions_in_cel(api, hooks, ns, configs):
    path = f"/cel-{ns}"
    hooks.route(path, lambda req: {"allowed": False, "status": {"message": "matched"}})
    conds = [{"name": "named-deny", "expression": "object.metadata.name.startsWith('deny-')"},
             {"name": "by-admin", "expression": "request.userInfo.username == 'kyb-admin' && oldObject == null"}]
    configs("ValidatingWebhookConfiguration", f"cel-{ns}", [
        hook("cel.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle, matchConditions=conds)])
    core = client.CoreV1Api(api)

    e = until(dry_run_create_refused(core, ns, cm("deny-probe")), "the webhook to take effect")
    assert json.loads(e.body)["message"] == 'admission webhook "cel.kyb.test" denied the request: matched'
    core.create_namespaced_config_map(ns, cm("allowed"))  # first condition false: not sent
    assert not requests_named(hooks, path, "allowed")
    # a condition that fails to evaluate is a call failure (failurePolicy Fail)
    configs("ValidatingWebhookConfiguration", f"celerr-{ns}", [
        hook("celerr.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle,
             matchConditions=[{"name": "broken", "expression": "object.data.missing == 'x'"}])])

    e = until(dry_run_create_refused(core, ns, cm("probe2")), "the second webhook to take effect")
    assert e.status == 500 and json.loads(e.body)["message"] == (
        'Internal error occurred: failed calling webhook "celerr.kyb.test": failed to evaluate match conditions: '
        "expression 'object.data.missing == 'x'' resulted in error: no such key: missing")
    # expressions that do not compile are refused when the configuration is written
    adm = client.AdmissionregistrationV1Api(api)
    bad = hook("bad.kyb.test", hooks.url(path), ns, ca=hooks.pki.ca_bundle,
               matchConditions=[{"name": "x", "expression": "object.("}, {"name": "y", "expression": "params.x"}])
    e = error_of(lambda: adm.create_validating_webhook_configuration(
        {"metadata": {"name": f"celbad-{ns}"}, "webhooks": [bad]}))
    fields = {c["field"]: c["message"] for c in json.loads(e.body)["details"]["causes"]}
    assert e.status == 422 and "compilation failed: ERROR: <input>:1:8: Syntax error" in \
        fields["webhooks[0].matchConditions[0].expression"]
    assert "undeclared reference to 'params'" in fields["webhooks[0].matchConditions[1].expression"]
