"""Admin kubeconfig round trip and mutual TLS against an aiohttp server with the
cluster's serving cert."""

from __future__ import annotations

import base64
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from kybernetes.auth import pki
from kybernetes.client.kubeconfig import (
    KubeConfig,
    KubeConfigError,
    load_kubeconfig,
    ssl_context,
    write_admin_kubeconfig,
)


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[pki.PKIPaths, Path]:
    paths = pki.ensure_pki(tmp_path / "data", sans_dns=[], sans_ip=[])
    return paths, tmp_path


def _write(paths: pki.PKIPaths, kc: Path, server: str) -> Path:
    return write_admin_kubeconfig(
        kc, server, paths.ca_cert.read_bytes(), paths.admin_cert.read_bytes(),
        paths.admin_key.read_bytes(),
    )


def test_kubeconfig_round_trip(cluster) -> None:
    paths, tmp = cluster
    kc = _write(paths, tmp / "sub" / "admin.kubeconfig", "https://127.0.0.1:6443")
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    doc = yaml.safe_load(kc.read_text())
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Config"
    assert doc["current-context"] == "default"
    assert doc["contexts"][0]["context"] == {"cluster": "default", "user": "default"}
    cluster_entry = doc["clusters"][0]["cluster"]
    assert base64.b64decode(cluster_entry["certificate-authority-data"]) == paths.ca_cert.read_bytes()
    user_entry = doc["users"][0]["user"]
    assert base64.b64decode(user_entry["client-key-data"]) == paths.admin_key.read_bytes()

    cfg = load_kubeconfig(kc)
    assert cfg == KubeConfig(
        server="https://127.0.0.1:6443",
        ca_pem=paths.ca_cert.read_bytes(),
        cert_pem=paths.admin_cert.read_bytes(),
        key_pem=paths.admin_key.read_bytes(),
        token=None,
        namespace="default",
    )


def test_kubeconfig_file_references_and_token(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "tok").write_text("abc.def\n")
    kc = tmp_path / "config"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://h:1", "certificate-authority": "ca.crt"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ns1"}}],
        "users": [{"name": "u", "user": {"tokenFile": "tok"}}],
    }))
    cfg = load_kubeconfig(kc)
    assert (cfg.server, cfg.ca_pem, cfg.token, cfg.namespace) == ("https://h:1", b"CA", "abc.def", "ns1")
    with pytest.raises(KubeConfigError, match='context "nope" not found'):
        load_kubeconfig(kc, context="nope")


async def _serve(paths: pki.PKIPaths):
    async def whoami(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert")
        subject = {k: v for rdn in peer["subject"] for k, v in rdn}
        return web.json_response({"cn": subject["commonName"], "o": subject["organizationName"]})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(paths.serving_cert, paths.serving_key)
    sctx.load_verify_locations(cafile=str(paths.ca_cert))
    sctx.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=sctx)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def test_mutual_tls_with_admin_kubeconfig(cluster) -> None:
    paths, tmp = cluster
    runner, port = await _serve(paths)
    try:
        url = f"https://127.0.0.1:{port}"
        cfg = load_kubeconfig(_write(paths, tmp / "admin.kubeconfig", url))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{cfg.server}/whoami", ssl=ssl_context(cfg)) as r:
                assert r.status == 200
                assert await r.json() == {"cn": "kyb-admin", "o": "system:masters"}

            # Without a client certificate the server refuses the connection.
            anon = KubeConfig(server=url, ca_pem=cfg.ca_pem)
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                async with s.get(f"{url}/whoami", ssl=ssl_context(anon)) as r:
                    await r.read()

            # A client that does not trust the cluster CA refuses the server.
            other = pki.ensure_pki(tmp / "other", sans_dns=[], sans_ip=[])
            stranger = KubeConfig(server=url, ca_pem=other.ca_cert.read_bytes(),
                                  cert_pem=cfg.cert_pem, key_pem=cfg.key_pem)
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with s.get(f"{url}/whoami", ssl=ssl_context(stranger)) as r:
                    await r.read()

            # In-cluster names are in the serving cert's SANs (checked without DNS).
            async with s.get(f"{url}/whoami", ssl=ssl_context(cfg),
                             server_hostname="kubernetes.default.svc") as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with s.get(f"{url}/whoami", ssl=ssl_context(cfg),
                                 server_hostname="elsewhere.example") as r:
                    await r.read()
    finally:
        await runner.cleanup()


def test_ssl_context_ignores_environment_trust(cluster, monkeypatch) -> None:
    paths, tmp = cluster
    # SSL_CERT_FILE would add roots to a default context; ours must trust only the CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(paths.ca_cert))
    ctx = ssl_context(KubeConfig(server="https://x", ca_pem=paths.ca_cert.read_bytes()))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1
    with pytest.raises(KubeConfigError):
        ssl_context(KubeConfig(server="https://x", cert_pem=b"x"))
