"""An in-memory API server behind a client Transport, for the service-account, root-CA
and aggregation controller unit tests: GET/LIST (field selector metadata.name),
WATCH (replaying history after a resourceVersion, then live), POST (AlreadyExists),
PUT (compare-and-swap on resourceVersion), DELETE; scripted failures; every change
notifies `changed` so tests wait on conditions (with a deadline) rather than sleep.
The tests at the end check the fake itself."""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any, Callable, Optional
from urllib.parse import unquote

import orjson

from kybernetes.client import Client
from kybernetes.client.transport import HTTPRequest

Obj = dict[str, Any]
JSON = {"content-type": "application/json"}


class Resp:
    def __init__(self, status: int, body: bytes = b"", queue: Optional[asyncio.Queue] = None) -> None:
        self.status = status
        self.headers = dict(JSON)
        self._body = body
        self._queue = queue
        self.closed = False

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())

    async def read(self) -> bytes:
        return self._body

    async def read_chunk(self) -> bytes:
        if self._queue is None or self.closed:
            return b""
        return await self._queue.get()  # b"" (from close) ends the stream

    async def close(self) -> None:
        self.closed = True
        if self._queue is not None:
            self._queue.put_nowait(b"")


def status(code: int, reason: str, message: str = "", causes: Optional[list] = None) -> Resp:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message or reason, "reason": reason, "code": code}
    if causes:
        body["details"] = {"causes": causes}
    return Resp(code, orjson.dumps(body))


KINDS = {"namespaces": ("v1", "Namespace"), "serviceaccounts": ("v1", "ServiceAccount"),
         "configmaps": ("v1", "ConfigMap"),
         "clusterroles": ("rbac.authorization.k8s.io/v1", "ClusterRole")}


class FakeCluster:
    def __init__(self) -> None:
        self.rv = itertools.count(100)
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {r: {} for r in KINDS}
        self.history: list[tuple[int, str, str, Obj]] = []  # (rv, resource, type, object)
        self.watchers: list[tuple[str, str, str, asyncio.Queue]] = []  # resource, ns, name, queue
        self.writes: list[tuple[str, str, str, str]] = []  # (method, resource, namespace, name)
        self.inject: list[Callable[[str, str, str, str], Optional[Resp]]] = []
        self.changed = asyncio.Condition()

    def client(self) -> Client:
        return Client("https://fake.invalid", transport=self, retry_backoff=0.001)

    # ------------------------------------------------------------------ direct access
    def put(self, resource: str, obj: Obj, etype: Optional[str] = None) -> Obj:
        obj = copy.deepcopy(obj)
        api_version, kind = KINDS[resource]
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace") or "", meta["name"])
        old = self.objects[resource].get(key)
        if old is None:
            meta.setdefault("uid", f"uid-{resource}-{key[0]}-{key[1]}-{next(self.rv)}")
        rv = next(self.rv)
        meta["resourceVersion"] = str(rv)
        self.objects[resource][key] = obj
        self._event(rv, resource, etype or ("ADDED" if old is None else "MODIFIED"), obj)
        return copy.deepcopy(obj)

    def remove(self, resource: str, name: str, namespace: str = "") -> Optional[Obj]:
        obj = self.objects[resource].pop((namespace, name), None)
        if obj is not None:
            rv = next(self.rv)
            obj = dict(obj, metadata=dict(obj["metadata"], resourceVersion=str(rv)))
            self._event(rv, resource, "DELETED", obj)
        return obj

    def get(self, resource: str, name: str, namespace: str = "") -> Optional[Obj]:
        return copy.deepcopy(self.objects[resource].get((namespace, name)))

    def _event(self, rv: int, resource: str, etype: str, obj: Obj) -> None:
        self.history.append((rv, resource, etype, copy.deepcopy(obj)))
        meta = obj["metadata"]
        for res, ns, name, q in self.watchers:
            if res == resource and (not ns or ns == meta.get("namespace")) and (not name or name == meta["name"]):
                q.put_nowait(orjson.dumps({"type": etype, "object": obj}) + b"\n")
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_until(self, pred: Callable[[], bool], timeout: float = 2.0) -> None:
        async def run() -> None:
            async with self.changed:
                await self.changed.wait_for(pred)
        await asyncio.wait_for(run(), timeout)

    # ------------------------------------------------------------------ the transport
    async def close(self) -> None:
        for *_, q in self.watchers:
            q.put_nowait(b"")

    @staticmethod
    def _parse(path: str) -> tuple[str, str, str]:
        parts = [unquote(p) for p in path.split("/") if p]
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        if rest[0] == "namespaces" and len(rest) >= 3:
            return rest[2], rest[1], rest[3] if len(rest) > 3 else ""
        return rest[0], "", rest[1] if len(rest) > 1 else ""

    async def send(self, req: HTTPRequest, *, stream: bool = False) -> Resp:
        resource, ns, name = self._parse(req.path)
        params = dict(req.params)
        for hook in self.inject:
            r = hook(req.method, resource, ns, name)
            if r is not None:
                return r
        if resource not in self.objects:
            return status(404, "NotFound", f"no resource {resource}")
        store = self.objects[resource]
        if req.method == "GET" and not name:
            fname = (params.get("fieldSelector") or "").removeprefix("metadata.name=")
            if params.get("watch") == "true":
                q: asyncio.Queue = asyncio.Queue()
                since = int(params.get("resourceVersion") or 0)
                for rv, res, etype, obj in self.history:
                    m = obj["metadata"]
                    if rv > since and res == resource and (not ns or ns == m.get("namespace")) \
                            and (not fname or fname == m["name"]):
                        q.put_nowait(orjson.dumps({"type": etype, "object": obj}) + b"\n")
                self.watchers.append((resource, ns, fname, q))
                return Resp(200, queue=q)
            items = [o for (ons, oname), o in sorted(store.items())
                     if (not ns or ns == ons) and (not fname or fname == oname)]
            return Resp(200, orjson.dumps({"kind": KINDS[resource][1] + "List", "apiVersion": KINDS[resource][0],
                                           "metadata": {"resourceVersion": str(next(self.rv))}, "items": items}))
        if req.method == "GET":
            obj = store.get((ns, name))
            return Resp(200, orjson.dumps(obj)) if obj else status(404, "NotFound", f"{resource} {name} not found")
        body = orjson.loads(req.body) if req.body else {}
        if req.method == "POST":
            name = body["metadata"]["name"]
            self.writes.append(("POST", resource, ns, name))
            if (ns, name) in store:
                return status(409, "AlreadyExists", f"{resource} {name} already exists")
            if ns and ("", ns) not in self.objects["namespaces"]:
                return status(404, "NotFound", f'namespaces "{ns}" not found')
            if ns and self.objects["namespaces"][("", ns)]["metadata"].get("deletionTimestamp"):
                return status(403, "Forbidden", "namespace is being terminated",
                              [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}])
            body["metadata"]["namespace"] = ns or None
            if not ns:
                body["metadata"].pop("namespace")
            return Resp(201, orjson.dumps(self.put(resource, body)))
        if req.method == "PUT":
            self.writes.append(("PUT", resource, ns, name))
            old = store.get((ns, name))
            if old is None:
                return status(404, "NotFound", f"{resource} {name} not found")
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want and want != old["metadata"]["resourceVersion"]:
                return status(409, "Conflict", "the object has been modified; please apply your changes "
                                               "to the latest version and try again")
            body["metadata"]["uid"] = old["metadata"]["uid"]
            return Resp(200, orjson.dumps(self.put(resource, body)))
        if req.method == "DELETE":
            self.writes.append(("DELETE", resource, ns, name))
            obj = self.remove(resource, name, ns)
            return Resp(200, orjson.dumps(obj)) if obj else status(404, "NotFound", f"{resource} {name} not found")
        return status(405, "MethodNotAllowed")


def namespace(name: str, **meta: Any) -> Obj:
    phase = "Terminating" if meta.get("deletionTimestamp") else "Active"
    return {"metadata": {"name": name, **meta}, "status": {"phase": phase}}


# ---------------------------------------------------------------------- the fake itself
async def test_fake_list_watch_cas():
    api = FakeCluster()
    c = api.client()
    cms = c.resource("", "v1", "configmaps")
    api.put("namespaces", namespace("a"))
    made = await cms.create({"metadata": {"name": "x"}, "data": {"k": "1"}}, "a")
    listed = await cms.list("a", field_selector="metadata.name=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["x"]
    async with cms.watch("a", resource_version=made["metadata"]["resourceVersion"]) as w:
        await cms.update(dict(made, data={"k": "2"}), "a")
        etype, obj = await w.__anext__()
        assert (etype, obj["data"]) == ("MODIFIED", {"k": "2"})
    try:
        await cms.update(dict(made, data={"k": "3"}), "a")  # stale resourceVersion
    except Exception as e:  # noqa: BLE001
        assert type(e).__name__ == "Conflict"
    else:
        raise AssertionError("expected a conflict")
    await c.close()
