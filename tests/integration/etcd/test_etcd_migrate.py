"""`kyb datastore migrate` between SQLite and a real etcd, both ways."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from fixtures.etcd import EtcdCluster, require_etcd

from kybernetes.cli import datastore
from kybernetes.storage import SQLiteStore, Store
from kybernetes.storage.etcd import EtcdStore

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def etcd(tmp_path: Path):
    require_etcd()
    with EtcdCluster(tmp_path / "etcd", size=1) as cl:
        yield cl


def _obj(kind: str, ns: str, name: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                         "creationTimestamp": "2024-05-06T07:08:09Z", "resourceVersion": ""},
            "data": {"k": name * 3},
        },
        sort_keys=True,
    ).encode()


async def _populate(store: Store) -> dict[str, bytes]:
    """A small cluster's worth of keys with history (updates, deletes, compaction)."""
    want: dict[str, bytes] = {}
    for ns in ("default", "kube-system", "team-a"):
        for i in range(40):
            key = f"/registry/configmaps/{ns}/cm-{i:03d}"
            want[key] = _obj("ConfigMap", ns, f"cm-{i:03d}")
    want["/registry/namespaces/default"] = _obj("Namespace", "", "default")
    want["/registry/secrets/default/bin"] = bytes(range(256)) * 40  # encrypted values are binary
    want["/registry/empty/x"] = b""
    want["/registry/unicode/ns/ñame-ü"] = "värde".encode()
    await asyncio.gather(*(store.create(k, v) for k, v in want.items()))
    # history the target does not need: updates and deletes, then a compaction
    cur = await store.get("/registry/configmaps/default/cm-000")
    for n in range(5):
        cur = await store.update(cur.key, cur.value + b" ", cur.mod_revision)
    want[cur.key] = cur.value
    for i in range(10):
        key = f"/registry/configmaps/team-a/cm-{i:03d}"
        await store.delete(key)
        del want[key]
    await store.compact(await store.current_revision() - 3)
    return want


async def _dump(store: Store) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    res = await store.list("", limit=50)
    rev = res.revision
    while True:
        out.update((kv.key, kv.value) for kv in res.items)
        if not res.more:
            return out
        res = await store.list("", revision=rev, limit=50, start_after=res.items[-1].key)


async def test_sqlite_to_etcd(tmp_path: Path, etcd: EtcdCluster) -> None:
    src = SQLiteStore(str(tmp_path / "src.db"), compact_interval=0)
    await src.start()
    want = await _populate(src)
    await src.close()
    out = io.StringIO()
    code = await datastore.migrate(f"sqlite://{tmp_path / 'src.db'}", etcd.url, out=out)
    assert code == 0, out.getvalue()
    assert f"copied {len(want)} keys" in out.getvalue() and "verified" in out.getvalue()
    dst = EtcdStore(etcd.endpoints, compact_interval=0)
    await dst.start()
    try:
        assert await _dump(dst) == want
        # the target is an ordinary store: its revisions are its own, writes go on
        kv = await dst.get("/registry/namespaces/default")
        assert json.loads(kv.value)["metadata"]["uid"] == json.loads(want[kv.key])["metadata"]["uid"]
        await dst.update(kv.key, kv.value, kv.mod_revision)
    finally:
        await dst.close()


async def test_etcd_to_sqlite(tmp_path: Path, etcd: EtcdCluster) -> None:
    src = EtcdStore(etcd.endpoints, compact_interval=0)
    await src.start()
    want = await _populate(src)
    await src.close()
    out = io.StringIO()
    target = f"sqlite://{tmp_path / 'new' / 'state.db'}"
    assert await datastore.migrate(etcd.url, target, out=out) == 0, out.getvalue()
    dst = SQLiteStore(str(tmp_path / "new" / "state.db"), compact_interval=0)
    await dst.start()
    try:
        assert await _dump(dst) == want
    finally:
        await dst.close()


async def test_round_trip_sqlite_etcd_sqlite_is_byte_equal(tmp_path: Path, etcd: EtcdCluster) -> None:
    a = SQLiteStore(str(tmp_path / "a.db"), compact_interval=0)
    await a.start()
    want = await _populate(a)
    await a.close()
    assert await datastore.migrate(f"sqlite://{tmp_path / 'a.db'}", etcd.url, out=io.StringIO()) == 0
    assert await datastore.migrate(etcd.url, f"sqlite://{tmp_path / 'b.db'}", out=io.StringIO()) == 0
    b = SQLiteStore(str(tmp_path / "b.db"), compact_interval=0)
    await b.start()
    try:
        assert await _dump(b) == want
    finally:
        await b.close()


async def test_non_empty_target_is_refused_unless_forced(tmp_path: Path, etcd: EtcdCluster,
                                                         capsys: pytest.CaptureFixture) -> None:
    src = SQLiteStore(str(tmp_path / "src.db"), compact_interval=0)
    await src.start()
    want = await _populate(src)
    await src.close()
    dst = EtcdStore(etcd.endpoints, compact_interval=0)
    await dst.start()
    try:
        await dst.create("/registry/configmaps/default/cm-000", b"stale")
        await dst.create("/registry/leftover/x", b"only in the target")
        code = await datastore.migrate(f"sqlite://{tmp_path / 'src.db'}", etcd.url, out=io.StringIO())
        assert code == 1
        assert "already holds 2 keys" in capsys.readouterr().err
        assert (await dst.get("/registry/configmaps/default/cm-000")).value == b"stale"  # untouched
        out = io.StringIO()
        code = await datastore.migrate(f"sqlite://{tmp_path / 'src.db'}", etcd.url, force=True, out=out)
        assert code == 0, out.getvalue()
        assert await _dump(dst) == want
    finally:
        await dst.close()


async def test_prefix_and_verify_reports_differences(tmp_path: Path, etcd: EtcdCluster) -> None:
    src = SQLiteStore(str(tmp_path / "src.db"), compact_interval=0)
    await src.start()
    try:
        want = await _populate(src)
        out = io.StringIO()
        code = await datastore.migrate(f"sqlite://{tmp_path / 'src.db'}", etcd.url,
                                       prefix="/registry/configmaps/", out=out)
        assert code == 0, out.getvalue()
        dst = EtcdStore(etcd.endpoints, compact_interval=0)
        await dst.start()
        try:
            got = await _dump(dst)
            assert got == {k: v for k, v in want.items() if k.startswith("/registry/configmaps/")}
            assert await datastore.verify(src, dst, "/registry/configmaps/") == []
            kv = await dst.get("/registry/configmaps/kube-system/cm-001")
            await dst.update(kv.key, kv.value + b"!", kv.mod_revision)
            await dst.delete("/registry/configmaps/kube-system/cm-002")
            await dst.create("/registry/configmaps/kube-system/zzz", b"extra")
            problems = await datastore.verify(src, dst, "/registry/configmaps/")
            assert "value differs: /registry/configmaps/kube-system/cm-001" in problems
            assert "missing in target: /registry/configmaps/kube-system/cm-002" in problems
            assert "only in target: /registry/configmaps/kube-system/zzz" in problems
        finally:
            await dst.close()
    finally:
        await src.close()


async def test_cli_entry_point(tmp_path: Path, etcd: EtcdCluster) -> None:
    """The argparse path, in a real process: `python -m kybernetes.cli.datastore migrate`."""
    src = SQLiteStore(str(tmp_path / "src.db"), compact_interval=0)
    await src.start()
    want = await _populate(src)
    await src.close()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    async def cli(*args: str) -> tuple[int, str, str]:
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kybernetes.cli.datastore", "migrate", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
        o, e = await asyncio.wait_for(p.communicate(), 60)
        return p.returncode, o.decode(), e.decode()

    code, out, err = await cli("--from", str(tmp_path / "src.db"), "--to", etcd.url)
    assert code == 0, err
    assert "verified" in out
    code, out, err = await cli("--from", str(tmp_path / "src.db"), "--to", etcd.url)
    assert code == 1 and "--force" in err
    code, out, err = await cli("--from", etcd.url, "--to", f"sqlite://{tmp_path / 'back.db'}")
    assert code == 0, err
    back = SQLiteStore(str(tmp_path / "back.db"), compact_interval=0)
    await back.start()
    try:
        assert await _dump(back) == want
    finally:
        await back.close()
    code, out, err = await cli("--from", "etcd://127.0.0.1:1?request_timeout=1", "--to", f"sqlite://{tmp_path / 'x.db'}")
    assert code == 1 and "cannot open" in err
