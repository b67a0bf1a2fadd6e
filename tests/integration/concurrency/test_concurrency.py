"""Issue 3 concurrency acceptance against a real `kyb server`, over raw aiohttp:
concurrent patches to one object lose no update, and concurrent Service creates get
distinct cluster IPs whose IPAddress objects match exactly."""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid

import aiohttp
import orjson

CLIENTS = 8
PATCHES = 200
SERVICE_CLIENTS = 16
SERVICES = 1000

# Both patch tests pass when ResourceHandlers.patch retries storage conflicts without a
# bound (checked by running the server with _MAX_PATCH_RETRIES raised); with the bound of
# 5 some patches answer 409 although they name no resourceVersion.
async def _sessions(kyb, n):
    ctx = kyb.ssl_context()
    return [aiohttp.ClientSession(base_url=kyb.url, connector=aiohttp.TCPConnector(ssl=ctx, limit=8))
            for _ in range(n)]


async def _req(s, method, path, body=None, ctype="application/json", ok=(200, 201)):
    data = body if isinstance(body, (bytes, type(None))) else orjson.dumps(body)
    async with s.request(method, path, data=data, headers={"Content-Type": ctype}) as r:
        text = await r.read()
        assert r.status in ok, (method, path, r.status, text[:500])
        return orjson.loads(text)


async def test_concurrent_patches_lose_no_update(kyb):
    """8 clients, each with its requests in sequence: 8 patches in flight at a time."""
    await _patches(kyb, burst=False)


async def test_burst_of_concurrent_patches_lose_no_update(kyb):
    """All 200 patches in flight at once over the 8 clients."""
    await _patches(kyb, burst=True)


async def _patches(kyb, *, burst):
    sessions = await _sessions(kyb, CLIENTS)
    try:
        ns = f"cc-{uuid.uuid4().hex[:6]}"
        s0 = sessions[0]
        await _req(s0, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        path = f"/api/v1/namespaces/{ns}/services/target"
        await _req(s0, "POST", f"/api/v1/namespaces/{ns}/services", {
            "metadata": {"name": "target"},
            "spec": {"ports": [{"name": "base", "port": 80}], "selector": {"app": "x"}}})

        async def one(i):
            s = sessions[i % CLIENTS]
            if i % 2 == 0:  # JSON merge patch: its own annotation
                await _req(s, "PATCH", path, {"metadata": {"annotations": {f"k{i}": str(i)}}},
                           "application/merge-patch+json")
            else:  # strategic merge patch: its own list entry (ports merge by `port`), plus a label
                await _req(s, "PATCH", path, {"metadata": {"labels": {f"l{i}": "v"}},
                                              "spec": {"ports": [{"name": f"p{i}", "port": 10000 + i}]}},
                           "application/strategic-merge-patch+json")

        async def client_loop(c):  # each client sends its share one after another
            for i in range(c, PATCHES, CLIENTS):
                await one(i)

        t0 = time.monotonic()
        if burst:
            await asyncio.gather(*(one(i) for i in range(PATCHES)))
        else:
            await asyncio.gather(*(client_loop(c) for c in range(CLIENTS)))
        elapsed = time.monotonic() - t0
        svc = await _req(s0, "GET", path)
        annotations = svc["metadata"].get("annotations") or {}
        labels = svc["metadata"].get("labels") or {}
        ports = {p["port"] for p in svc["spec"]["ports"]}
        assert {k: v for k, v in annotations.items() if k.startswith("k")} == \
            {f"k{i}": str(i) for i in range(0, PATCHES, 2)}
        assert {k for k in labels if k.startswith("l")} == {f"l{i}" for i in range(1, PATCHES, 2)}
        assert ports == {80} | {10000 + i for i in range(1, PATCHES, 2)}
        assert elapsed < 60, elapsed
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


async def test_concurrent_service_creates_get_distinct_cluster_ips(kyb):
    sessions = await _sessions(kyb, SERVICE_CLIENTS)
    try:
        ns = f"svc-{uuid.uuid4().hex[:6]}"
        s0 = sessions[0]
        await _req(s0, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        before = await _req(s0, "GET", "/apis/networking.k8s.io/v1/ipaddresses")
        before_names = {o["metadata"]["name"] for o in before["items"]}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(SERVICES):
            queue.put_nowait(i)
        created: dict[str, str] = {}

        async def worker(s):
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                svc = await _req(s, "POST", f"/api/v1/namespaces/{ns}/services", {
                    "metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}]}})
                created[svc["metadata"]["name"]] = svc["spec"]["clusterIP"]

        await asyncio.gather(*(worker(s) for s in sessions))
        assert len(created) == SERVICES
        ips = list(created.values())
        assert len(set(ips)) == SERVICES
        net = ipaddress.ip_network("10.43.0.0/16")
        assert all(ipaddress.ip_address(ip) in net for ip in ips)

        listed = await _req(s0, "GET", f"/api/v1/namespaces/{ns}/services")
        assert {o["metadata"]["name"]: o["spec"]["clusterIP"] for o in listed["items"]} == created
        after = await _req(s0, "GET", "/apis/networking.k8s.io/v1/ipaddresses")
        mine = {o["metadata"]["name"]: o for o in after["items"] if o["metadata"]["name"] not in before_names}
        assert set(mine) == set(ips)
        by_ip = {ip: name for name, ip in created.items()}
        for ip, o in mine.items():
            ref = o["spec"]["parentRef"]
            assert (ref["resource"], ref["namespace"], ref["name"]) == ("services", ns, by_ip[ip])
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
