"""A real `kyb server` moved from SQLite to etcd and back with `kyb datastore migrate`:
objects come out as they went in (uid, creationTimestamp, contents); only
resourceVersions change."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from fixtures.etcd import EtcdCluster, require_etcd
from fixtures.server import RunningServer, start_server

from kybernetes.cli import datastore

pytestmark = pytest.mark.slow


def _objects(srv: RunningServer) -> dict[tuple[str, str, str], dict]:
    srv.kubectl("wait", "-n", "default", "service/kubernetes", "--timeout=30s",
                f"--for=jsonpath={{.spec.ports[0].targetPort}}={srv.port}")
    out = {}
    for kind in ("namespaces", "configmaps", "secrets", "services"):
        items = json.loads(srv.kubectl("get", kind, "-A", "-o", "json").stdout)["items"]
        for o in items:
            md = o["metadata"]
            out[(kind, md.get("namespace", ""), md["name"])] = o
    # default/kubernetes points at whichever port this server serves on (each start picks a
    # free one): the server keeps it so, as upstream; the rest of the Service is compared
    for port in out[("services", "default", "kubernetes")]["spec"]["ports"]:
        if port.get("targetPort") == srv.port:
            port["targetPort"] = "<server port>"
    return out


def _same_object(a: dict, b: dict) -> None:
    ma, mb = dict(a["metadata"]), dict(b["metadata"])
    for m in (ma, mb):
        m.pop("resourceVersion", None)
        m.pop("managedFields", None)  # timestamps of field managers are kept too, but not compared
    assert ma == mb
    assert {k: v for k, v in a.items() if k != "metadata"} == {k: v for k, v in b.items() if k != "metadata"}


async def test_server_moves_from_sqlite_to_etcd_and_back(tmp_path: Path) -> None:
    require_etcd()
    data = tmp_path / "kyb"
    srv = await asyncio.to_thread(start_server, data)
    try:
        srv.kubectl("create", "namespace", "team-a")
        for i in range(5):
            srv.kubectl("-n", "team-a", "create", "configmap", f"cm-{i}", f"--from-literal=k={i}")
        srv.kubectl("-n", "team-a", "create", "secret", "generic", "s1", "--from-literal=password=hunter2")
        before = _objects(srv)
    finally:
        srv.stop()
    assert ("configmaps", "team-a", "cm-4") in before

    with EtcdCluster(tmp_path / "etcd", size=1) as cl:
        sqlite_url = f"sqlite://{data / 'db' / 'state.db'}"
        out = io.StringIO()
        assert await datastore.migrate(sqlite_url, cl.url, out=out) == 0, out.getvalue()
        srv = await asyncio.to_thread(start_server, data, extra=("--datastore-endpoint", cl.url))
        try:
            on_etcd = _objects(srv)
            assert on_etcd.keys() == before.keys()
            for k in before:
                _same_object(before[k], on_etcd[k])
            # and the cluster goes on from there
            srv.kubectl("-n", "team-a", "create", "configmap", "made-on-etcd")
            on_etcd = _objects(srv)
        finally:
            srv.stop()

        back = tmp_path / "back"
        back.mkdir()
        out = io.StringIO()
        assert await datastore.migrate(cl.url, f"sqlite://{back / 'state.db'}", out=out) == 0, out.getvalue()

    # the same data dir (same CA and keys), pointed at the copy
    srv = await asyncio.to_thread(start_server, data, extra=("--datastore-endpoint", f"sqlite://{back / 'state.db'}"))
    try:
        again = _objects(srv)
        assert again.keys() == on_etcd.keys()
        for k in on_etcd:
            _same_object(on_etcd[k], again[k])
    finally:
        srv.stop()
