"""LIST semantics: selectors, resourceVersion / resourceVersionMatch, limit and continue.

Unpaginated lists come from the resource's watch cache; paginated ones read the
store at one revision so every page belongs to the same snapshot (as upstream).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Optional

from kybernetes.api import continuetoken, selectors
from kybernetes.apiserver import errors, tables
from kybernetes.apiserver.objects import ObjectStore, collection_prefix
from kybernetes.registry.base import Cause, Strategy
from kybernetes.storage.interface import CompactedError, FutureRevisionError

Obj = dict[str, Any]

# how long a list/watch waits for the cache to reach a requested resourceVersion (upstream: 3 s)
CACHE_WAIT_SECONDS = 3.0

_EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list.")


@dataclass
class Filter:
    """Namespace + label + field selection of one request."""

    namespace: str
    label: Optional[Any]  # selectors.LabelSelector
    field: Optional[Any]  # selectors.FieldSelector
    strategy: Strategy

    @property
    def trivial(self) -> bool:
        return self.label is None and self.field is None

    def matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.label is not None and not self.label.matches(meta.get("labels") or {}):
            return False
        if self.field is not None and not self.field.matches(
                {k: _field_str(v) for k, v in self.strategy.field_values(obj).items()}):
            return False
        return True


def _field_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def request_filter(s: Strategy, namespace: str, query: dict[str, str]) -> Filter:
    """Parse labelSelector / fieldSelector; bad ones are 400 BadRequest."""
    label = field = None
    try:
        if query.get("labelSelector"):
            label = selectors.parse_label_selector(query["labelSelector"])
            if label.empty():
                label = None
        if query.get("fieldSelector"):
            field = selectors.parse_field_selector(query["fieldSelector"])
            supported = {"metadata.name"} | set(s.field_selectors)
            if s.namespaced:
                supported.add("metadata.namespace")
            field.check_supported(supported)
            if field.empty():
                field = None
    except selectors.SelectorError as e:
        raise errors.bad_request(str(e)) from None
    return Filter(namespace if s.namespaced else "", label, field, s)


def list_body(s: Strategy, items: list[Obj], rv: str, cont: str = "", remaining: Optional[int] = None) -> Obj:
    meta: Obj = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    if remaining is not None and cont:
        meta["remainingItemCount"] = remaining
    return {
        "kind": s.kind + "List",
        "apiVersion": s.api_version,
        "metadata": meta,
        "items": [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items],
    }


def _parse_rv(value: Optional[str]) -> Optional[int]:
    if value in (None, ""):
        return None
    try:
        n = int(value) if value.isascii() and value.strip() == value else int("x")
    except ValueError:
        raise errors.bad_request(f'Invalid value: "{value}": resourceVersion must be an integer') from None
    if n > (1 << 64) - 1:
        # a revision is a uint64 (upstream: strconv.ParseUint's range error)
        raise errors.bad_request(f'Invalid value: "{value}": resourceVersion must be an integer')
    if n < 0:
        raise errors.bad_request(f'Invalid value: "{value}": resourceVersion must be a non-negative integer')
    return n


async def cache_at(objects: ObjectStore, s: Strategy, rv: Optional[int]):
    """The resource's watch cache, caught up to `rv` (None = consistent with the store now)."""
    cache = await objects.cache(s)
    target = rv if rv is not None else await objects.store.current_revision()
    if target:
        try:
            await asyncio.wait_for(cache.wait_for(target), CACHE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise errors.APIError(504, "Timeout", f"Too large resource version: {target}, current: {cache.revision}",
                                  details={"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                           "retryAfterSeconds": 1},
                                  headers={"Retry-After": "1"}) from None
    return cache


async def list_objects(objects: ObjectStore, r: Any) -> Obj:
    """Serve a LIST request (r is an apiserver.rest.Request)."""
    s: Strategy = r.strategy
    q = r.query
    flt = request_filter(s, r.info.namespace, q)
    limit = _parse_limit(q.get("limit"))
    cont = q.get("continue") or ""
    rv = _parse_rv(q.get("resourceVersion"))
    match = q.get("resourceVersionMatch") or ""
    from kybernetes.apiserver.queryparams import as_int64

    as_int64("timeoutSeconds", q.get("timeoutSeconds"))  # decoded (and so checked) for lists too
    if q.get("sendInitialEvents") is not None:
        raise list_options_invalid(Cause("FieldValueForbidden", "sendInitialEvents",
                                         "Forbidden: sendInitialEvents is forbidden for list"))
    if match and match not in ("Exact", "NotOlderThan"):
        raise list_options_invalid(Cause("FieldValueNotSupported", "resourceVersionMatch",
                                         f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan", ""'))
    if match and rv is None:
        raise list_options_invalid(Cause("FieldValueForbidden", "resourceVersionMatch",
                                         "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"))
    if match == "Exact" and rv == 0:
        raise list_options_invalid(Cause("FieldValueForbidden", "resourceVersionMatch",
                                         'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    prefix = collection_prefix(s, r.info.namespace)

    if cont:
        if rv is not None and rv != 0 or match:
            raise errors.bad_request("specifying resource version is not allowed when using continue")
        try:
            tok = continuetoken.decode_continue(cont, prefix)
        except continuetoken.ContinueTokenError as e:
            raise errors.bad_request(e.message) from None
        start_after = tok.start_after
        if start_after is None:
            raise errors.bad_request("continue key is not valid: unexpected start key")
        return await _paged(objects, s, prefix, flt, limit, tok.resource_version, start_after, r)

    if match == "Exact" or (limit and rv not in (None, 0)):
        read_rev = rv or 0
        return await _paged(objects, s, prefix, flt, limit, read_rev, None, r)
    if limit and rv is None:
        return await _paged(objects, s, prefix, flt, limit, 0, None, r)

    # from the watch cache: rv None = consistent read, 0 = any, N = not older than N
    cache = await cache_at(objects, s, None if rv is None else (rv or 0))
    result = cache.list(prefix=prefix)
    items = []
    for kv in result.items:
        obj = objects.decode(kv, s)
        if flt.matches(obj):
            items.append(obj)
    return _shape(r, s, items, str(result.revision), "", None)


def list_options_invalid(*causes: Cause) -> errors.APIError:
    """422 Invalid on meta.k8s.io ListOptions, as upstream validates list/watch options."""
    return errors.invalid("ListOptions", "meta.k8s.io", "", causes)


def _parse_limit(v: Optional[str]) -> int:
    from kybernetes.apiserver.queryparams import as_int64

    n = as_int64("limit", v)
    return max(n or 0, 0)


async def _paged(objects: ObjectStore, s: Strategy, prefix: str, flt: Filter, limit: int, rev: int,
                 start_after: Optional[str], r: Any) -> Obj:
    store = objects.store
    out: list[Obj] = []
    last_key = start_after
    more = False
    remaining: Optional[int] = None
    chunk = max(limit, 64) if limit else 0
    try:
        while True:
            res = await store.list(prefix, revision=rev, limit=chunk, start_after=last_key)
            rev = res.revision
            stopped_early = False
            for i, kv in enumerate(res.items):
                last_key = kv.key
                obj = objects.decode(kv, s)
                if flt.matches(obj):
                    out.append(obj)
                    if limit and len(out) >= limit:
                        more = i < len(res.items) - 1 or res.more
                        if more and flt.trivial and res.count:
                            remaining = res.count - (i + 1)
                        stopped_early = True
                        break
            if stopped_early or not res.more:
                break
    except CompactedError:
        if start_after is not None:
            raise errors.gone(_EXPIRED_CONTINUE) from None
        raise errors.gone("The resourceVersion for the provided list is too old.") from None
    except FutureRevisionError:
        raise errors.APIError(504, "Timeout", f"Too large resource version: {rev}", headers={"Retry-After": "1"}) from None
    cont = ""
    if more and last_key is not None:
        cont = continuetoken.encode_continue(last_key, prefix, rev)
    return _shape(r, s, out, str(rev), cont, remaining)


def _shape(r: Any, s: Strategy, items: list[Obj], rv: str, cont: str, remaining: Optional[int]) -> Obj:
    kind = r.output.as_kind
    if kind == "Table":
        t = tables.table(s, items, r.query.get("includeObject", "Metadata"))
        t["metadata"] = {"resourceVersion": rv, **({"continue": cont} if cont else {}),
                         **({"remainingItemCount": remaining} if remaining is not None and cont else {})}
        return t
    if kind in ("PartialObjectMetadataList", "PartialObjectMetadata"):
        return tables.partial_list(items, rv, cont, r.output.as_version)
    return list_body(s, items, rv, cont, remaining)


async def select_all(objects: ObjectStore, r: Any) -> list[Obj]:
    """Every object a deletecollection request's selectors match (current state)."""
    s: Strategy = r.strategy
    flt = request_filter(s, r.info.namespace, r.query)
    cache = await cache_at(objects, s, None)
    res = cache.list(prefix=collection_prefix(s, r.info.namespace))
    return [o for o in (objects.decode(kv, s) for kv in res.items) if flt.matches(o)]
