"""Audit annotations from admission: which mutating webhook ran and whether it changed the
object (`mutation.webhook.admission.k8s.io/round_R_index_I`), annotations a webhook returns
(`<webhook>/<key>`), and policy failures under the Audit action
(`validation.policy.admission.k8s.io/validation_failure`)."""

from __future__ import annotations

import json
import time

import pytest

from fixtures.server import start_server
from fixtures.webhook_server import WebhookServer, json_patch, make_pki

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    resources:
    - group: ""
      resources: ["configmaps"]
  - level: None
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    (d / "policy.yaml").write_text(POLICY)
    srv = start_server(d / "data", extra=("--audit-policy-file", str(d / "policy.yaml"),
                                          "--audit-log-path", str(d / "audit.log")))
    hooks = WebhookServer(make_pki()).start(d)
    yield srv, hooks, d / "audit.log"
    hooks.stop()
    srv.stop()


def events(path, name: str) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        ref = ev.get("objectRef") or {}
        if ev.get("verb") == "create" and ref.get("name") == name and ev.get("stage") == "ResponseComplete":
            out.append(ev)
    return out


def wait_event(path, name: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(path, name)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no audit event for {name}")


def test_webhook_and_policy_annotations(audited):
    srv, hooks, log = audited
    hooks.route("/label", lambda req: {**json_patch([{"op": "add", "path": "/metadata/labels",
                                                      "value": {"by": "hook"}}]),
                                       "auditAnnotations": {"decision": "labelled"}})
    hooks.route("/noop", lambda req: {"allowed": True})
    srv.kubectl("create", "namespace", "audited")
    srv.kubectl("label", "namespace", "audited", "audit-test=yes")
    webhooks = [{"name": n, "clientConfig": {"url": hooks.url(p), "caBundle": hooks.pki.ca_bundle},
                 "sideEffects": "None", "admissionReviewVersions": ["v1"],
                 "namespaceSelector": {"matchLabels": {"audit-test": "yes"}},
                 "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                            "resources": ["configmaps"]}]}
                for n, p in (("label.kyb.test", "/label"), ("noop.kyb.test", "/noop"))]
    srv.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "audit-hooks"}, "webhooks": webhooks}))
    srv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
         "metadata": {"name": "short-names"}, "spec": {
             "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                     "operations": ["CREATE"], "resources": ["configmaps"]}],
                                  "namespaceSelector": {"matchLabels": {"audit-test": "yes"}}},
             "validations": [{"expression": "size(object.metadata.name) < 5", "message": "name too long"}]}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
         "metadata": {"name": "short-names"}, "spec": {"policyName": "short-names", "validationActions": ["Audit"]}},
    ]}))
    deadline = time.monotonic() + 15
    n = 0
    while True:  # configurations reach admission through watches, a moment after they are written
        n += 1
        name = f"probe-{n}"
        srv.kubectl("create", "configmap", name, "-n", "audited")
        ann = wait_event(log, name).get("annotations") or {}
        if "mutation.webhook.admission.k8s.io/round_0_index_1" in ann and \
                "validation.policy.admission.k8s.io/validation_failure" in ann:
            break
        assert time.monotonic() < deadline, f"configurations never took effect: {ann}"
    assert json.loads(ann["mutation.webhook.admission.k8s.io/round_0_index_0"]) == \
        {"configuration": "audit-hooks", "webhook": "label.kyb.test", "mutated": True}
    assert json.loads(ann["mutation.webhook.admission.k8s.io/round_0_index_1"]) == \
        {"configuration": "audit-hooks", "webhook": "noop.kyb.test", "mutated": False}
    assert ann["label.kyb.test/decision"] == "labelled"
    assert json.loads(ann["validation.policy.admission.k8s.io/validation_failure"]) == [
        {"message": "name too long", "policy": "short-names", "binding": "short-names", "expressionIndex": 0,
         "validationActions": ["Audit"]}]
    # Audit alone does not deny
    assert srv.kubectl("get", "configmap", name, "-n", "audited", "-o", "jsonpath={.metadata.labels.by}").stdout \
        == "hook"
