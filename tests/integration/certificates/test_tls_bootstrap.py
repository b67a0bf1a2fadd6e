"""Kubelet TLS bootstrap and client certificate rotation against a real server: a bootstrap
token gets a node client certificate through an auto-approved CSR, the node then acts as
`system:node:<name>` (governed by the Node authorizer and NodeRestriction), and with a short
--cluster-signing-duration the certificate is renewed (selfnodeclient) and the client
switches to it without a restart."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fixtures.server import start_server
from fixtures.waits import wait_until
from kybernetes.auth import pki, tokens
from kybernetes.cli.agent import _write_kubelet_kubeconfig
from kybernetes.client import Client
from kybernetes.client.errors import Forbidden, NotFound, TransportError, Unauthorized
from kybernetes.client.kubeconfig import KubeConfig, ssl_context
from kybernetes.kubelet.certificate import BootstrapError, ClientCertificateManager

SIGNING_DURATION = 20  # seconds: short enough that rotation happens within the test
CSRS = ("certificates.k8s.io", "v1", "certificatesigningrequests")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("kyb"), extra=("--cluster-signing-duration", f"{SIGNING_DURATION}s"))
    yield s
    s.stop()


@pytest.fixture
async def admin(srv):
    async with Client.from_kubeconfig(srv.kubeconfig) as c:
        yield c


def _base(srv) -> KubeConfig:
    return KubeConfig(server=srv.url, ca_pem=(srv.data_dir / "tls" / "ca.crt").read_bytes())


@pytest.fixture
async def bootstrap_token(admin):
    """A bootstrap token in the default node-token group (as `kubeadm token create`)."""
    token = tokens.generate_bootstrap_token()
    secret = tokens.bootstrap_token_secret(token, expiration=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    secrets_api = admin.resource("", "v1", "secrets")
    await secrets_api.create(secret, "kube-system")
    yield token
    try:
        await secrets_api.delete(secret["metadata"]["name"], "kube-system")
    except NotFound:
        pass


@pytest.fixture
async def node(srv, admin, bootstrap_token, tmp_path):
    """A bootstrapped node: (name, manager, client); everything it made is removed after."""
    name = f"boot-{secrets.token_hex(3)}"
    mgr = ClientCertificateManager(_base(srv), name, tmp_path / "pki", bootstrap_token=bootstrap_token, timeout=60)
    client = await mgr.start()
    yield name, mgr, client
    await mgr.stop()
    await client.close()
    csrs = admin.resource(*CSRS)
    for csr in (await csrs.list())["items"]:
        if csr["metadata"]["name"].startswith("node-csr-") or csr["spec"].get("username") == f"system:node:{name}":
            try:
                await csrs.delete(csr["metadata"]["name"])
            except NotFound:
                pass
    for args in ((("", "v1", "nodes"), name, None), (("coordination.k8s.io", "v1", "leases"), name, "kube-node-lease")):
        try:
            await admin.resource(*args[0]).delete(args[1], args[2])
        except NotFound:
            pass


async def _whoami(client: Client) -> dict:
    out = await client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    return out["status"]["userInfo"]


def _approved(csr: dict) -> dict:
    return next(c for c in csr["status"]["conditions"] if c["type"] == "Approved")


async def test_bootstrap_token_yields_a_node_identity(srv, admin, bootstrap_token, node):
    name, mgr, client = node
    token_id = bootstrap_token.split(".")[0]
    # the certificate on disk is the node's, from the cluster CA
    cert = mgr.creds.cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"system:node:{name}"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:nodes"]
    ca = x509.load_pem_x509_certificate((srv.data_dir / "tls" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert mgr.store.current_path.is_symlink()
    assert x509.load_pem_x509_certificate(mgr.store.current_path.read_bytes()) == cert

    # the CSR was filed by the bootstrap token and approved by the approving controller
    csrs = [c for c in (await admin.resource(*CSRS).list())["items"]
            if c["spec"].get("username") == f"system:bootstrap:{token_id}"]
    assert len(csrs) == 1
    csr = csrs[0]
    assert csr["metadata"]["name"].startswith("node-csr-")
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert "system:bootstrappers:kyb:default-node-token" in csr["spec"]["groups"]
    cond = _approved(csr)
    assert (cond["reason"], cond["message"]) == (
        "AutoApproved", "Auto approving kubelet client certificate after SubjectAccessReview.")

    # the node acts as system:node:<name> in system:nodes ...
    who = await _whoami(client)
    assert who["username"] == f"system:node:{name}"
    assert "system:nodes" in who["groups"]
    # ... registers itself and heartbeats, as the kubelet does
    nodes = client.resource("", "v1", "nodes")
    await nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert (await nodes.get(name))["metadata"]["name"] == name
    await client.resource("coordination.k8s.io", "v1", "leases").create(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
         "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}, "kube-node-lease")
    # the kubeconfig `kyb agent` writes (naming the current certificate file, as kubeadm's
    # kubelet.conf) works with real kubectl
    kc = mgr.store.dir.parent / "kubelet.kubeconfig"
    _write_kubelet_kubeconfig(kc, srv.url, _base(srv).ca_pem, mgr.store.current_path)
    out = await asyncio.to_thread(srv.kubectl, "auth", "whoami", "-o", "json", env={"KUBECONFIG": str(kc)})
    assert json.loads(out.stdout)["status"]["userInfo"]["username"] == f"system:node:{name}"
    # ... and is held to the Node authorizer and NodeRestriction
    with pytest.raises(Forbidden):
        await nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{name}-other"}})
    with pytest.raises(Forbidden):
        await client.resource("", "v1", "secrets").list("kube-system")


async def test_bootstrap_token_cannot_act_beyond_bootstrapping(srv, bootstrap_token):
    ctx = ssl_context(_base(srv))
    async with Client(srv.url, ctx, bootstrap_token) as boot:
        who = await _whoami(boot)
        assert who["username"].startswith("system:bootstrap:")
        with pytest.raises(Forbidden):
            await boot.resource("", "v1", "nodes").list()


async def test_client_certificate_rotates_without_restart(srv, admin, node):
    name, mgr, client = node
    first_creds = mgr.creds
    first = first_creds.cert
    assert first.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(seconds=SIGNING_DURATION)
    await asyncio.wait_for(mgr.rotated.wait(), SIGNING_DURATION + 30)
    second = mgr.creds.cert
    assert second.serial_number != first.serial_number
    assert second.public_key() != first.public_key()  # a new key, not just a new certificate
    assert x509.load_pem_x509_certificate(mgr.store.current_path.read_bytes()) == mgr.creds.cert

    # the renewal was requested by the node itself and approved as a self renewal
    renewals = [c for c in (await admin.resource(*CSRS).list())["items"]
                if c["spec"].get("username") == f"system:node:{name}"]
    assert renewals, "no renewal CSR from the node"
    cond = _approved(renewals[0])
    assert cond["message"] == "Auto approving self kubelet client certificate after SubjectAccessReview."
    issued = x509.load_pem_x509_certificate(base64.b64decode(renewals[0]["status"]["certificate"]))
    assert issued.subject == first.subject

    # once the first certificate has expired the server refuses it, and the same client
    # object keeps working: it switched to the new certificate
    remaining = (first.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if remaining > 0:
        await asyncio.sleep(remaining + 1)  # a clock deadline, not a synchronisation
    old_ctx = ssl_context(KubeConfig(server=srv.url, ca_pem=_base(srv).ca_pem, cert_pem=first_creds.cert_pem,
                                     key_pem=first_creds.key_pem))
    async with Client(srv.url, old_ctx, max_retries=0) as stale:
        with pytest.raises((TransportError, Unauthorized)):
            await _whoami(stale)
    who = await _whoami(client)
    assert who["username"] == f"system:node:{name}"


async def test_denied_request_ends_bootstrap_with_its_reason(srv, admin, tmp_path):
    """A CSR an administrator denies ends the bootstrap with the reason (no certificate)."""
    token = tokens.generate_bootstrap_token()
    # a token outside the node-token group, whose group may file CSRs (system:node-bootstrapper)
    # but not have them auto-approved (no nodeclient binding)
    group = f"system:bootstrappers:manual-{secrets.token_hex(2)}"
    secret = tokens.bootstrap_token_secret(token, groups=(group,))
    await admin.resource("", "v1", "secrets").create(secret, "kube-system")
    rbac = "rbac.authorization.k8s.io"
    bindings = admin.resource(rbac, "v1", "clusterrolebindings")
    await bindings.create({"metadata": {"name": group.replace(":", "-")},
                           "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "system:node-bootstrapper"},
                           "subjects": [{"apiGroup": rbac, "kind": "Group", "name": group}]})
    name = f"deny-{secrets.token_hex(3)}"
    mgr = ClientCertificateManager(_base(srv), name, tmp_path / "pki", bootstrap_token=token, timeout=60)
    task = asyncio.ensure_future(mgr.start())
    csrs = admin.resource(*CSRS)
    try:
        async def filed():
            items = [c for c in (await csrs.list())["items"]
                     if c["spec"].get("username") == f"system:bootstrap:{token.split('.')[0]}"]
            return items[0] if items else None

        csr = await wait_until(admin, [(CSRS, None)], filed, what="the bootstrap CSR")
        assert not any(c["type"] == "Approved" for c in (csr.get("status") or {}).get("conditions") or [])
        csr["status"] = {"conditions": [{"type": "Denied", "status": "True", "reason": "NotThisNode",
                                         "message": "not on the list"}]}
        await csrs.update(csr, subresource="approval")
        with pytest.raises(BootstrapError, match="is denied, reason: NotThisNode, message: not on the list"):
            await asyncio.wait_for(task, 30)
        assert mgr.store.load() is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await admin.resource("", "v1", "secrets").delete(secret["metadata"]["name"], "kube-system")
        await bindings.delete(group.replace(":", "-"))
        for c in (await csrs.list())["items"]:
            if c["spec"].get("username") == f"system:bootstrap:{token.split('.')[0]}":
                await csrs.delete(c["metadata"]["name"])


async def test_approval_needs_approve_on_the_signer(srv, admin):
    """Updating /approval needs `approve` on signers/<signerName> (or <domain>/*); the user
    authenticates with a client certificate from the cluster CA."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from kybernetes.kubelet.certificate import make_csr

    user = f"approver-{secrets.token_hex(3)}"
    rbac = "rbac.authorization.k8s.io"
    roles, bindings = admin.resource(rbac, "v1", "clusterroles"), admin.resource(rbac, "v1", "clusterrolebindings")
    csrs = admin.resource(*CSRS)
    pem = make_csr(ec.generate_private_key(ec.SECP256R1()), "x")
    csr_name = f"approve-{secrets.token_hex(3)}"
    await csrs.create({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                       "metadata": {"name": csr_name},
                       "spec": {"request": base64.b64encode(pem).decode(), "signerName": "example.com/widgets",
                                "usages": ["client auth"]}})
    await roles.create({"metadata": {"name": user}, "rules": [
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["get"]},
        {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
         "verbs": ["update"]}]})
    await bindings.create({"metadata": {"name": user}, "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": user},
                           "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]})
    signer_role = f"{user}-signer"
    as_user = None
    try:
        ca = pki.load_ca(srv.data_dir)
        cert_pem, key_pem = pki.issue_client_cert(ca, user, [], 1)
        as_user = Client(srv.url, ssl_context(KubeConfig(server=srv.url, ca_pem=ca.cert_pem, cert_pem=cert_pem,
                                                         key_pem=key_pem)))
        csr = await csrs.get(csr_name)
        csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Manual", "message": "ok"}]}
        path = f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{csr_name}/approval"
        with pytest.raises(Forbidden) as e:
            await as_user.request("PUT", path, csr)
        assert e.value.status["message"] == (
            f'certificatesigningrequests.certificates.k8s.io "{csr_name}" is forbidden: '
            'user not permitted to approve requests with signerName "example.com/widgets"')
        assert not (await csrs.get(csr_name)).get("status", {}).get("conditions")
        # the domain wildcard grants it
        await roles.create({"metadata": {"name": signer_role}, "rules": [
            {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "resourceNames": ["example.com/*"],
             "verbs": ["approve"]}]})
        await bindings.create({"metadata": {"name": signer_role},
                               "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": signer_role},
                               "subjects": [{"apiGroup": rbac, "kind": "User", "name": user}]})

        async def approved():
            try:
                out = await as_user.request("PUT", path, csr)
            except Forbidden:  # the new binding is not visible to the authorizer yet
                return None
            return out

        out = await wait_until(admin, [((rbac, "v1", "clusterrolebindings"), None)], approved, what="approval")
        assert [c["type"] for c in out["status"]["conditions"]] == ["Approved"]
    finally:
        if as_user is not None:
            await as_user.close()
        for api, n in ((bindings, user), (roles, user), (bindings, signer_role), (roles, signer_role),
                       (csrs, csr_name)):
            try:
                await api.delete(n)
            except NotFound:
                pass


async def test_components_run_as_their_own_identities(srv):
    """The controller manager and the scheduler use their own client certificates, not
    the admin's: their kubeconfigs name system:kube-controller-manager / system:kube-scheduler."""
    for kc, user in (("controller-manager.kubeconfig", "system:kube-controller-manager"),
                     ("scheduler.kubeconfig", "system:kube-scheduler")):
        async with Client.from_kubeconfig(srv.data_dir / kc) as c:
            who = await _whoami(c)
            assert who["username"] == user
            assert "system:masters" not in who.get("groups", [])
            with pytest.raises(Forbidden):  # neither upstream role may write ConfigMaps
                await c.resource("", "v1", "configmaps").create(
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-allowed"}}, "default")



async def test_controllers_run_as_their_service_accounts(srv, admin):
    """Each controller acts as kube-system/<controller> (upstream's
    --use-service-account-credentials): the manager made their service accounts, and a
    deployment still rolls out, so each one's system:controller:* role suffices."""
    want = {"deployment-controller", "replicaset-controller", "namespace-controller", "generic-garbage-collector",
            "certificate-controller", "node-controller"}

    async def made():
        items = (await admin.resource("", "v1", "serviceaccounts").list("kube-system"))["items"]
        return want <= {o["metadata"]["name"] for o in items}

    await wait_until(admin, [(("", "v1", "serviceaccounts"), "kube-system")], made, what="controller service accounts")
    ns = f"t-{secrets.token_hex(3)}"
    await admin.resource("", "v1", "namespaces").create({"metadata": {"name": ns}})
    try:
        deploy = admin.resource("apps", "v1", "deployments")
        await deploy.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                                      "template": {"metadata": {"labels": {"app": "d"}},
                                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}, ns)

        async def pods():
            items = (await admin.resource("", "v1", "pods").list(ns))["items"]
            return items if len(items) == 2 else None

        got = await wait_until(admin, [(("", "v1", "pods"), ns)], pods, what="the deployment's pods")
        assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in got)
    finally:
        await admin.resource("", "v1", "namespaces").delete(ns)


def _kyb(srv, *args: str):
    import subprocess
    import sys

    from fixtures.server import REPO

    return subprocess.run([sys.executable, "-m", "kybernetes.cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


async def test_kyb_token_create_list_delete(srv, tmp_path):
    made = await asyncio.to_thread(_kyb, srv, "token", "--data-dir", str(srv.data_dir), "create", "--ttl", "1h",
                                   "--description", "for node x")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert tokens.parse_bootstrap_token(token)
    listed = await asyncio.to_thread(_kyb, srv, "token", "--data-dir", str(srv.data_dir), "list")
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith(token))
    assert "authentication,signing" in line and "for node x" in line
    assert "system:bootstrappers:kyb:default-node-token" in line

    # the token joins a node
    name = f"tok-{secrets.token_hex(3)}"
    mgr = ClientCertificateManager(_base(srv), name, tmp_path / "pki", bootstrap_token=token, timeout=60)
    client = await mgr.start()
    try:
        assert (await _whoami(client))["username"] == f"system:node:{name}"
    finally:
        await mgr.stop()
        await client.close()

    gone = await asyncio.to_thread(_kyb, srv, "token", "--data-dir", str(srv.data_dir), "delete", token)
    assert gone.returncode == 0, gone.stderr
    async with Client(srv.url, ssl_context(_base(srv)), token, max_retries=0) as boot:
        with pytest.raises(Unauthorized):
            await _whoami(boot)
    bad = await asyncio.to_thread(_kyb, srv, "token", "--data-dir", str(srv.data_dir), "create", "not-a-token")
    assert bad.returncode == 1 and "must match" in bad.stderr


async def test_serving_certificate_waits_for_an_administrator(srv, admin, node, tmp_path):
    """kubelet-serving requests are not auto-approved (as upstream); once approved the
    node stores a server certificate for its name and address."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from kybernetes.kubelet.certificate import request_serving_certificate

    name, _, client = node
    task = asyncio.ensure_future(request_serving_certificate(client, name, tmp_path / "srv", dns=(name,),
                                                             ips=("10.0.0.7",), timeout=60))
    csrs = admin.resource(*CSRS)
    try:
        async def filed():
            items = [c for c in (await csrs.list(field_selector="spec.signerName=kubernetes.io/kubelet-serving"))["items"]
                     if c["spec"].get("username") == f"system:node:{name}"]
            return items[0] if items else None

        csr = await wait_until(admin, [(CSRS, None)], filed, what="the serving CSR")
        assert csr["spec"]["usages"] == ["digital signature", "server auth"]
        assert not task.done()
        csr["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "Admin", "message": "ok"}]}
        await csrs.update(csr, subresource="approval")
        path = await asyncio.wait_for(task, 30)
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [name]
        assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
