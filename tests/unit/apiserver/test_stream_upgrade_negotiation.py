"""How the API server picks the SPDY remote-command version of an upgrade request and
how it refuses one it cannot serve (upstream's plain-text 403)."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from kybernetes.apiserver import spdy_upgrade as su


def req(*versions: str):
    headers = CIMultiDict([("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")] +
                          [("X-Stream-Protocol-Version", v) for v in versions])
    return make_mocked_request("POST", "/api/v1/namespaces/default/pods/p/exec", headers=headers)


def test_clients_first_supported_version_wins():
    assert su.is_spdy_upgrade(req())
    assert su.negotiate(req("v4.channel.k8s.io", "v3.channel.k8s.io"), su.REMOTECOMMAND_PROTOCOLS) == \
        "v4.channel.k8s.io"
    assert su.negotiate(req("v7.channel.k8s.io, v2.channel.k8s.io", "v4.channel.k8s.io"),
                        su.REMOTECOMMAND_PROTOCOLS) == "v2.channel.k8s.io"
    assert su.negotiate(req("channel.k8s.io"), su.REMOTECOMMAND_PROTOCOLS) == "channel.k8s.io"
    # v5 over SPDY is v4 (the close signal is WebSocket-only)
    assert su.negotiate(req("v5.channel.k8s.io"), su.REMOTECOMMAND_PROTOCOLS) == "v5.channel.k8s.io"
    assert su.negotiate(req("v6.channel.k8s.io"), su.REMOTECOMMAND_PROTOCOLS) is None
    assert su.negotiate(req(), su.REMOTECOMMAND_PROTOCOLS) is None


def test_refusal_lists_what_the_server_accepts():
    r = su.refusal(req("v7.channel.k8s.io"), su.REMOTECOMMAND_PROTOCOLS)
    assert r.status == 403
    assert r.text == ("unable to upgrade: unable to negotiate protocol: client supports [v7.channel.k8s.io], "
                      "server accepts [v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io "
                      "channel.k8s.io]\n")
    assert r.headers.getall("X-Accepted-Stream-Protocol-Versions") == su.REMOTECOMMAND_PROTOCOLS
    missing = su.refusal(req(), su.REMOTECOMMAND_PROTOCOLS)
    assert (missing.status, missing.text) == (400, "unable to upgrade: X-Stream-Protocol-Version is required")
