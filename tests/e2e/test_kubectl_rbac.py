"""RBAC with real identities: a user certificate signed by the cluster CA, bound to
`view` in one namespace, checked with kubectl and `kubectl auth can-i`."""

from __future__ import annotations

import base64

import pytest
import yaml

from kybernetes.auth import pki


@pytest.fixture(scope="module")
def jane(kyb, tmp_path_factory):
    """A kubeconfig for user jane (groups: dev) signed by the cluster CA."""
    ca = pki.load_ca(kyb.data_dir)
    cert, key = pki.issue_client_cert(ca, "jane", ["dev"], 1)
    admin = yaml.safe_load(kyb.kubeconfig.read_text())
    admin["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode(),
    }
    path = tmp_path_factory.mktemp("jane") / "kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    kyb.kubectl("create", "namespace", "team")
    kyb.kubectl("create", "configmap", "c", "-n", "team", "--from-literal=a=b")
    kyb.kubectl("create", "rolebinding", "jane-view", "-n", "team", "--clusterrole=view", "--user=jane")
    return path


def as_jane(kyb, jane, *args, check=False):
    return kyb.kubectl("--kubeconfig", str(jane), *args, check=check)


def test_bootstrap_roles_exist(kyb):
    names = kyb.kubectl("get", "clusterroles", "-o", "name").stdout.split()
    for n in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
              "system:public-info-viewer", "system:kube-scheduler", "system:node-proxier"):
        assert f"clusterrole.rbac.authorization.k8s.io/{n}" in names
    view = yaml.safe_load(kyb.kubectl("get", "clusterrole", "view", "-o", "yaml").stdout)
    # view is aggregated from system:aggregate-to-view
    assert any("configmaps" in (r.get("resources") or []) for r in view["rules"])


def test_view_in_one_namespace(kyb, jane):
    assert "configmap/c" in as_jane(kyb, jane, "get", "cm", "-n", "team", "-o", "name", check=True).stdout.split()
    p = as_jane(kyb, jane, "get", "cm", "-n", "default")
    assert p.returncode != 0
    assert 'User "jane" cannot list resource "configmaps" in API group "" in the namespace "default"' in p.stderr
    p = as_jane(kyb, jane, "create", "configmap", "x", "-n", "team", "--from-literal=a=b")
    assert p.returncode != 0 and "forbidden" in p.stderr
    assert kyb.kubectl("get", "cm", "x", "-n", "team", check=False).returncode != 0


def test_can_i(kyb, jane):
    assert as_jane(kyb, jane, "auth", "can-i", "list", "configmaps", "-n", "team").stdout.strip() == "yes"
    assert as_jane(kyb, jane, "auth", "can-i", "delete", "configmaps", "-n", "team").stdout.strip() == "no"
    assert as_jane(kyb, jane, "auth", "can-i", "list", "pods", "-n", "default").stdout.strip() == "no"
    who = as_jane(kyb, jane, "auth", "whoami", "-o", "yaml", check=True).stdout
    info = yaml.safe_load(who)["status"]["userInfo"]
    assert info["username"] == "jane" and "dev" in info["groups"]
    # the admin may ask about others
    out = kyb.kubectl("auth", "can-i", "get", "configmaps", "-n", "team", "--as=jane", check=False).stdout
    assert out.strip() == "yes"


def test_escalation_is_refused(kyb, jane):
    # jane may not grant herself edit, nor create a role with more than she holds
    kyb.kubectl("create", "role", "rb-writer", "-n", "team", "--verb=create", "--resource=rolebindings.rbac.authorization.k8s.io,roles.rbac.authorization.k8s.io")
    kyb.kubectl("create", "rolebinding", "jane-rb", "-n", "team", "--role=rb-writer", "--user=jane")
    p = as_jane(kyb, jane, "create", "rolebinding", "self-edit", "-n", "team", "--clusterrole=edit", "--user=jane")
    assert p.returncode != 0 and "forbidden" in p.stderr
    p = as_jane(kyb, jane, "create", "role", "big", "-n", "team", "--verb=delete", "--resource=secrets")
    assert p.returncode != 0 and "attempting to grant RBAC permissions not currently held" in p.stderr
    # within her own rights it works
    as_jane(kyb, jane, "create", "role", "small", "-n", "team", "--verb=get", "--resource=configmaps", check=True)


def with_token(kyb, token, *args):
    return kyb.kubectl("--kubeconfig=/dev/null", f"--server={kyb.url}",
                       f"--certificate-authority={kyb.data_dir / 'tls' / 'ca.crt'}", f"--token={token}",
                       *args, check=False)


def test_service_account_tokens(kyb):
    kyb.kubectl("create", "serviceaccount", "bot", "-n", "team")
    token = kyb.kubectl("create", "token", "bot", "-n", "team").stdout.strip()
    assert token.count(".") == 2
    who = with_token(kyb, token, "auth", "whoami", "-o", "yaml")
    info = yaml.safe_load(who.stdout)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:team:bot"
    assert "system:serviceaccounts:team" in info["groups"]
    p = with_token(kyb, token, "get", "pods", "-n", "team")
    assert p.returncode != 0 and 'User "system:serviceaccount:team:bot" cannot list resource "pods"' in p.stderr
    kyb.kubectl("create", "rolebinding", "bot-view", "-n", "team", "--clusterrole=view", "--serviceaccount=team:bot")
    assert with_token(kyb, token, "get", "cm", "-n", "team", "-o", "name").returncode == 0
    # a forged token, and the token of a deleted service account, are 401
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "Unauthorized" in with_token(kyb, forged, "get", "cm", "-n", "team").stderr
    kyb.kubectl("delete", "serviceaccount", "bot", "-n", "team")
    assert "Unauthorized" in with_token(kyb, token, "get", "cm", "-n", "team").stderr
