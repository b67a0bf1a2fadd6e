"""WATCH: streams of ADDED / MODIFIED / DELETED / BOOKMARK / ERROR events from a watch cache.

Honours resourceVersion (start after it), sendInitialEvents with the
`k8s.io/initial-events-end` bookmark, allowWatchBookmarks, timeoutSeconds, and
label/field selectors, where an object leaving the selection is a DELETED event
and one entering it is ADDED (as upstream).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Optional

import orjson
from aiohttp import web

from kybernetes.apiserver import errors, latency, negotiation, tables
from kybernetes.apiserver.listing import Filter, _parse_rv, cache_at, request_filter
from kybernetes.apiserver.objects import ObjectStore, collection_prefix
from kybernetes.apiserver.rest import warning_header
from kybernetes.storage.interface import CompactedError, Event, StorageError
from kybernetes.registry.base import Strategy

Obj = dict[str, Any]

BOOKMARK_INTERVAL = 30.0  # seconds between progress bookmarks when asked for
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _truthy(v: Optional[str]) -> bool:
    from kybernetes.apiserver.queryparams import as_bool

    return as_bool(v)


class _Stream:
    """Writes watch events in the negotiated framing."""

    def __init__(self, resp: web.StreamResponse, r: Any, protobuf: bool) -> None:
        self.resp = resp
        self.r = r
        self.protobuf = protobuf
        self.first_table = True

    def _shape(self, obj: Obj) -> Obj:
        kind = self.r.output.as_kind
        if kind == "Table" and obj.get("kind") != "Status":
            t = tables.table(self.r.strategy, [obj], self.r.query.get("includeObject", "Metadata"),
                             with_columns=self.first_table)
            self.first_table = False
            t["metadata"] = {"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")}
            return t
        if kind in ("PartialObjectMetadata", "PartialObjectMetadataList") and obj.get("kind") != "Status":
            return tables.partial(obj, self.r.output.as_version)
        return obj

    async def send(self, etype: str, obj: Obj) -> None:
        shaped = obj if etype == "BOOKMARK" and self.r.output.as_kind != "Table" else self._shape(obj)
        with latency.track(latency.SERIALIZE):
            if self.protobuf:
                from kybernetes.api import protobuf

                data = protobuf.encode_watch_event(etype, shaped)
            else:
                data = orjson.dumps({"type": etype, "object": shaped}) + b"\n"
        with latency.track(latency.RESPONSE_WRITE):
            await self.resp.write(data)


def _bookmark(r: Any, rv: int, initial_end: bool = False) -> Obj:
    s = r.strategy
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    if r.output.as_kind == "Table":
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": []}
    return {"kind": s.kind, "apiVersion": s.api_version, "metadata": meta}


def _expired(requested: int, oldest: int) -> Obj:
    return errors.gone(f"too old resource version: {requested} ({oldest})").status()


def translate(objects: ObjectStore, flt: Filter, ev: Event, s: Optional[Strategy] = None) -> Optional[tuple[str, Obj]]:
    """Turn a store event into a watch event for this filter (or None when unseen), in the
    form of the resource `s` watched."""
    if ev.type == "DELETE":
        obj = objects.decode(ev.kv, s)
        return ("DELETED", obj) if flt.matches(obj) else None
    obj = objects.decode(ev.kv, s)
    now = flt.matches(obj)
    if ev.prev is None or ev.created:
        return ("ADDED", obj) if now else None
    if flt.trivial and not flt.namespace:
        return ("MODIFIED", obj)
    before = flt.matches(objects.decode(ev.prev, s))
    if now and before:
        return ("MODIFIED", obj)
    if now:
        return ("ADDED", obj)
    if before:
        # left the selection: upstream reports the last matching state, at this revision
        last = objects.decode(ev.prev, s)
        last["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        return ("DELETED", last)
    return None


async def serve_watch(objects: ObjectStore, r: Any) -> web.StreamResponse:
    """Serve a WATCH request (r is an apiserver.rest.Request)."""
    s = r.strategy
    q = r.query
    flt = request_filter(s, r.info.namespace, q)
    if r.info.name:
        # a watch on one object: /…/pods?fieldSelector=metadata.name=x or /watch/…/pods/x
        from kybernetes.api import selectors

        extra = selectors.parse_field_selector(f"metadata.name={r.info.name}")
        flt.field = extra if flt.field is None else selectors.parse_field_selector(
            q.get("fieldSelector", "") + f",metadata.name={r.info.name}")
    rv = _parse_rv(q.get("resourceVersion"))
    match = q.get("resourceVersionMatch") or ""
    send_initial = q.get("sendInitialEvents")
    bookmarks = _truthy(q.get("allowWatchBookmarks"))
    if send_initial is not None:
        if match != "NotOlderThan":
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [
                _cause("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")])
        if _truthy(send_initial) and not bookmarks:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [
                _cause("allowWatchBookmarks", "sendInitialEvents requires setting allowWatchBookmarks to true")])
    elif match:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", [
            _cause("resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")])
    from kybernetes.apiserver.queryparams import as_int64

    seconds = as_int64("timeoutSeconds", q.get("timeoutSeconds"))
    timeout = float(seconds) if seconds else random.uniform(1800, 3600)

    initial = _truthy(send_initial) if send_initial is not None else (rv is None or rv == 0)
    # initial state: consistent (rv unset), any (0) or not older than rv; plain watches need no wait
    cache = await cache_at(objects, s, rv if initial else 0)

    use_pb = r.output.media == negotiation.PROTOBUF and r.output.as_kind == ""
    resp = web.StreamResponse(status=200)
    resp.content_type = (negotiation.PROTOBUF + ";stream=watch") if use_pb else negotiation.JSON
    resp.headers["Cache-Control"] = "no-cache, private"
    resp.enable_chunked_encoding()
    for w in r.warnings:
        resp.headers.add("Warning", warning_header(w))
    await resp.prepare(r.http)
    stream = _Stream(resp, r, use_pb)
    prefix = collection_prefix(s, r.info.namespace)
    deadline = time.monotonic() + timeout

    if initial:
        snap = cache.list(prefix=prefix)
        start_after = snap.revision
        for kv in snap.items:
            obj = objects.decode(kv, s)
            if flt.matches(obj):
                await stream.send("ADDED", obj)
        if send_initial is not None:
            await stream.send("BOOKMARK", _bookmark(r, start_after, initial_end=True))
    else:
        start_after = rv or 0
    last_rv = start_after
    try:
        events = cache.watch(start_after, prefix=prefix)
        it = events.__aiter__()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(remaining, BOOKMARK_INTERVAL) if bookmarks else remaining
            try:
                ev = await asyncio.wait_for(it.__anext__(), wait)
            except asyncio.TimeoutError:
                if bookmarks and time.monotonic() < deadline:
                    # events can reach the cache while the timed-out wait is cancelled; a
                    # bookmark past them would let a client that reconnects skip them
                    await stream.send("BOOKMARK", _bookmark(r, bookmark_revision(events, cache, last_rv)))
                continue
            except StopAsyncIteration:
                break
            last_rv = ev.revision
            if not ev.kv.key.startswith(prefix):
                continue
            out = translate(objects, flt, ev, s)
            if out is not None:
                await stream.send(*out)
    except CompactedError as e:
        await stream.send("ERROR", _expired(start_after, getattr(e, "compacted", 0)))
    except StorageError as e:
        await stream.send("ERROR", errors.gone(f"watch ended: {e}").status())
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    finally:
        aclose = getattr(locals().get("events"), "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                pass
    try:
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp


def bookmark_revision(events: Any, cache: Any, last_rv: int) -> int:
    """The resourceVersion a progress bookmark may claim: the cache's revision once this
    watch has returned everything the cache holds, else only what it has sent."""
    behind = getattr(events, "behind", None)
    if behind is not None and behind():
        return last_rv
    return max(last_rv, cache.revision)


def _cause(fieldname: str, msg: str):
    from kybernetes.registry.base import Cause

    return Cause("FieldValueForbidden", fieldname, f"Forbidden: {msg}")
