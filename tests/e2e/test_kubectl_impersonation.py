"""Impersonation with real kubectl (`--as`, `--as-group`, `--as-uid`, `--as-user-extra`):
who may impersonate is decided by RBAC `impersonate` rules; the audit log keeps the real
requester and records the impersonated user."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from fixtures.server import start_server
from kybernetes.auth import pki

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    omitStages: ["RequestReceived"]
"""

IMPERSONATOR_ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules:
- apiGroups: [""]
  resources: ["users"]
  verbs: ["impersonate"]
  resourceNames: ["bob"]
- apiGroups: [""]
  resources: ["groups"]
  verbs: ["impersonate"]
  resourceNames: ["dev"]
- apiGroups: ["authentication.k8s.io"]
  resources: ["uids", "userextras/scopes"]
  verbs: ["impersonate"]
"""


class Identity:
    def __init__(self, srv, name: str, d: Path) -> None:
        ca = pki.load_ca(srv.data_dir)
        cert, key = pki.issue_client_cert(ca, name, [], 1)
        (d / f"{name}.crt").write_bytes(cert)
        (d / f"{name}.key").write_bytes(key)
        self.srv, self.crt, self.key = srv, d / f"{name}.crt", d / f"{name}.key"
        cfg = yaml.safe_load(srv.kubeconfig.read_text())
        cfg["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert).decode(),
                                   "client-key-data": base64.b64encode(key).decode()}
        self.kubeconfig = d / f"{name}.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(cfg))

    def kubectl(self, *args: str, check: bool = False):
        return self.srv.kubectl("--kubeconfig", str(self.kubeconfig), *args, check=check)

    def raw(self, method: str, path: str, headers: list[tuple[str, str]], body: dict | None = None):
        """An HTTPS request with repeated headers allowed; returns (code, parsed body)."""
        import http.client

        ctx = ssl.create_default_context(cafile=str(self.srv.data_dir / "tls" / "ca.crt"))
        ctx.load_cert_chain(str(self.crt), str(self.key))
        conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, context=ctx, timeout=30)
        try:
            conn.putrequest(method, path)
            data = json.dumps(body).encode() if body is not None else b""
            for k, v in headers + [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]:
                conn.putheader(k, v)
            conn.endheaders(data)
            r = conn.getresponse()
            return r.status, json.loads(r.read() or b"{}")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("imp")
    (d / "policy.yaml").write_text(POLICY)
    s = start_server(d / "data", extra=("--audit-policy-file", str(d / "policy.yaml"),
                                        "--audit-log-path", str(d / "audit.log")))
    s.audit_log = d / "audit.log"
    s.ids = {n: Identity(s, n, d) for n in ("alice", "carol")}
    s.kubectl("apply", "-f", "-", input=IMPERSONATOR_ROLE)
    s.kubectl("create", "clusterrolebinding", "alice-imp", "--clusterrole=impersonate-bob", "--user=alice")
    s.kubectl("create", "namespace", "team")
    s.kubectl("create", "configmap", "c", "-n", "team", "--from-literal=a=b")
    s.kubectl("create", "rolebinding", "bob-view", "-n", "team", "--clusterrole=view", "--user=bob")
    yield s
    s.stop()


def whoami(ident_or_srv, *args) -> dict:
    p = ident_or_srv.kubectl("auth", "whoami", "-o", "json", *args, check=True)
    return json.loads(p.stdout)["status"]["userInfo"]


def test_admin_acts_as_bob_with_bobs_rights(srv):
    assert srv.kubectl("get", "cm", "-n", "team", "--as=bob", "-o", "name").stdout.split()[:1] == ["configmap/c"]
    p = srv.kubectl("get", "cm", "-n", "default", "--as=bob", check=False)
    assert p.returncode != 0
    assert ('configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" '
            'in the namespace "default"') in p.stderr
    info = whoami(srv, "--as=bob")
    assert info == {"username": "bob", "groups": ["system:authenticated"]}


def test_impersonator_with_rights(srv):
    alice = srv.ids["alice"]
    # alice herself may not read the namespace; as bob she may
    assert alice.kubectl("get", "cm", "-n", "team").returncode != 0
    assert alice.kubectl("get", "cm", "-n", "team", "--as=bob", "-o", "name", check=True).stdout.split()[:1] == ["configmap/c"]
    info = whoami(alice, "--as=bob", "--as-group=dev", "--as-uid=u-42", "--as-user-extra=scopes=view")
    assert info == {"username": "bob", "uid": "u-42", "groups": ["dev", "system:authenticated"],
                    "extra": {"scopes": ["view"]}}
    assert alice.kubectl("auth", "can-i", "list", "configmaps", "-n", "team", "--as=bob").stdout.strip() == "yes"
    assert alice.kubectl("auth", "can-i", "list", "configmaps", "-n", "default", "--as=bob").stdout.strip() == "no"
    assert alice.kubectl("auth", "can-i", "delete", "configmaps", "-n", "team", "--as=bob").stdout.strip() == "no"


def test_impersonator_limits(srv):
    alice = srv.ids["alice"]
    p = alice.kubectl("get", "cm", "-n", "team", "--as=eve")
    assert ('users "eve" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
            'at the cluster scope') in p.stderr
    p = alice.kubectl("get", "cm", "-n", "team", "--as=bob", "--as-group=system:masters")
    assert ('groups "system:masters" is forbidden: User "alice" cannot impersonate resource "groups" '
            'in API group "" at the cluster scope') in p.stderr
    p = alice.kubectl("get", "cm", "-n", "team", "--as=bob", "--as-user-extra=reason=x")
    assert ('userextras.authentication.k8s.io "x" is forbidden: User "alice" cannot impersonate resource '
            '"userextras/reason" in API group "authentication.k8s.io" at the cluster scope') in p.stderr
    p = alice.kubectl("get", "cm", "-n", "team", "--as=system:serviceaccount:team:default")
    assert ('serviceaccounts "default" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" '
            'in API group "" in the namespace "team"') in p.stderr


def test_user_without_impersonate_rights(srv):
    carol = srv.ids["carol"]
    for args in (("get", "cm", "-n", "team", "--as=bob"), ("auth", "can-i", "list", "configmaps", "-n", "team", "--as=bob")):
        p = carol.kubectl(*args)
        assert p.returncode != 0, args
        assert ('users "bob" is forbidden: User "carol" cannot impersonate resource "users" in API group "" '
                'at the cluster scope') in p.stderr, p.stderr
    # kubectl words a 403 on the review itself this way
    p = carol.kubectl("auth", "whoami", "--as=bob")
    assert p.returncode != 0 and "you do not have permission to call it" in p.stderr
    assert whoami(carol) == {"username": "carol", "groups": ["system:authenticated"]}
    code, st = carol.raw("GET", "/api/v1/namespaces/team/configmaps", [("Impersonate-User", "bob")])
    assert code == 403 and st["reason"] == "Forbidden"
    assert st["details"] == {"name": "bob", "kind": "users"}


def test_raw_headers_repeated_groups_and_encoded_extra_keys(srv):
    alice = srv.ids["alice"]
    code, st = alice.raw("GET", "/api/v1/namespaces/team/configmaps", [("Impersonate-Group", "dev")])
    assert code == 400 and st["reason"] == "BadRequest"
    assert st["message"] == "requested [{Group  dev    }] without impersonating a user"
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    code, st = srv.ids["alice"].raw("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    [("Impersonate-User", "bob"), ("Impersonate-Group", "dev"),
                                     ("Impersonate-Extra-Scopes", "a"), ("impersonate-extra-scopes", "b")], review)
    assert code == 201, st
    assert st["status"]["userInfo"] == {"username": "bob", "groups": ["dev", "system:authenticated"],
                                        "extra": {"scopes": ["a", "b"]}}
    # the admin may set any extra key; %-escapes in the key are decoded
    tls = srv.data_dir / "tls"
    ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    ctx.load_cert_chain(str(tls / "admin.crt"), str(tls / "admin.key"))
    req = urllib.request.Request(f"{srv.url}/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                 data=json.dumps(review).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Impersonate-User": "bob",
                                          "Impersonate-Extra-Example.com%2fteam": "blue"})
    with urllib.request.urlopen(req, context=ctx) as r:
        st = json.loads(r.read())
    assert st["status"]["userInfo"]["extra"] == {"example.com/team": ["blue"]}


def test_audit_records_impersonated_user(srv):
    alice = srv.ids["alice"]
    alice.kubectl("get", "cm", "c", "-n", "team", "--as=bob", check=True)

    def found():
        evs = [json.loads(x) for x in srv.audit_log.read_text().splitlines()] if srv.audit_log.exists() else []
        return [e for e in evs if e.get("verb") == "get" and e.get("objectRef", {}).get("name") == "c"
                and e["user"]["username"] == "alice"]

    deadline = time.monotonic() + 10
    while not found() and time.monotonic() < deadline:
        time.sleep(0.05)
    ev = found()[-1]
    assert ev["impersonatedUser"] == {"username": "bob", "groups": ["system:authenticated"]}
    assert ev["responseStatus"]["code"] == 200
    assert ev["annotations"]["authorization.k8s.io/decision"] == "allow"
