"""etcd v3 backend of the Store contract.

Keys are stored exactly as given (`/registry/<resource>/<namespace>/<name>`), the
way upstream's API server lays them out, so etcd tooling sees familiar data.

The etcd client is gRPC: message classes and service stubs generated from etcd's
API (the ones shipped by the pinned `etcd3aio` package), driven over one
`grpc.aio` channel that balances over every endpoint.  Nothing outside this
module sees gRPC or protobuf; everything maps onto the Store contract:

- create  = Txn(create_revision(key) == 0 -> Put,  else -> Range(key))
- update  = Txn(mod_revision(key) == expected -> Put(prev_kv), else -> Range(key))
- delete  = Txn(mod_revision(key) == expected -> DeleteRange(prev_kv), else -> Range(key))
            (a plain DeleteRange with prev_kv when there is no precondition)
- get/list = Range at a revision; `start_after` continues from start_after + "\\0";
            etcd's `count` is the number of keys in the (remaining) range at
            that revision, `more` says whether `limit` cut the page.
- errors: "required revision has been compacted" -> CompactedError,
          "required revision is a future revision" -> FutureRevisionError,
          connection failures, timeouts, lost leaders -> UnavailableError (retryable).

Watches own their gRPC stream (one Watch RPC per watch) and their reconnect
loop: after any disconnect the watch is re-created from the last *received*
revision + 1, and events at or below that revision are dropped, so a consumer
never sees a gap or a duplicate.  A compaction cancel ends the watch with
CompactedError (its compact_revision is remembered as the store's compaction
point).  Progress (`progress_revision` / `wait_progress`, as SQLiteWatch has)
comes from etcd progress requests on the watch's stream; see EtcdWatch.

Writes are never retried here: an UNAVAILABLE after a request was sent may or may
not have been applied, so the caller (the API server, then its client) decides.
Reads are retried on transient errors until the request deadline.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import os
import time
import weakref
from typing import Any, Optional, Sequence, Union

import grpc
import grpc.aio

from .errors import StoreClosedError, WatchTooSlowError
from .interface import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
    Store,
    UnavailableError,
)

log = logging.getLogger(__name__)

WATCH_QUEUE_LIMIT = 10000  # undelivered events a watcher may hold before it is dropped (as SQLite)
DEFAULT_PORT = 2379
REQUEST_TIMEOUT = 5.0  # seconds per request (reads retry transient failures within it)
# On etcd before these versions, a requested progress notification can overtake
# events already queued for the stream (etcd issues 15220 and 17507); see EtcdWatch.
_PROGRESS_FIXED = {(3, 4): (3, 4, 31), (3, 5): (3, 5, 13)}
_SYNC_GRACE = 0.3  # s: an etcd < fixed server syncs a catching-up watcher within ~100 ms

_pb: Any = None  # etcd's rpc_pb2 (imported on first use: grpc stubs are heavy)
_pbg: Any = None
_kvpb: Any = None


def _load_pb() -> None:
    global _pb, _pbg, _kvpb
    if _pb is not None:
        return
    # etcd3aio's generated modules import each other as the top-level package
    # `etcd` (from its proto/ directory, a namespace package).  Any plain module
    # named etcd.py on sys.path (say, beside a script being run) would win
    # over a namespace package, so bind the name to etcd3aio's directory first.
    import importlib.util
    import sys
    import types

    if "etcd" not in sys.modules:
        spec = importlib.util.find_spec("etcd3aio")
        if spec is not None and spec.origin:
            proto = os.path.join(os.path.dirname(spec.origin), "proto", "etcd")
            if os.path.isdir(proto):
                pkg = types.ModuleType("etcd")
                pkg.__path__ = [proto]
                sys.modules["etcd"] = pkg
    from etcd3aio._protobuf import kv_pb2, rpc_pb2, rpc_pb2_grpc

    _pb, _pbg, _kvpb = rpc_pb2, rpc_pb2_grpc, kv_pb2


def _range_end(prefix: bytes) -> bytes:
    """The etcd range_end that selects every key starting with `prefix` (b"\\0" = no end)."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"


def _prefix_range(prefix: str, start_after: Optional[str] = None) -> tuple[bytes, bytes]:
    """(key, range_end) for the keys under `prefix` that are > `start_after`.

    UTF-8 byte order equals code point order, so this is the order SQLite's
    backend uses, and continue tokens mean the same on both."""
    p = prefix.encode()
    end = _range_end(p) if p else b"\0"
    if start_after is not None and start_after >= prefix:
        start = start_after.encode() + b"\0"
    else:
        start = p or b"\0"
    return start, end


def _kv(m: Any) -> KeyValue:
    return KeyValue(m.key.decode(), m.value, m.mod_revision, m.create_revision)


def _event(ev: Any) -> Event:
    kv = ev.kv
    has_prev = ev.HasField("prev_kv")
    prev = _kv(ev.prev_kv) if has_prev else None
    if ev.type == 1:  # DELETE: etcd sends only key + revision; the value is the previous one
        if prev is not None:
            return Event("DELETE", KeyValue(prev.key, prev.value, kv.mod_revision, prev.create_revision), prev)
        return Event("DELETE", KeyValue(kv.key.decode(), b"", kv.mod_revision, 0), None)
    cur = _kv(kv)
    if kv.create_revision == kv.mod_revision:
        prev = None  # a create: nothing before it (a compacted tombstone is no "previous")
    return Event("PUT", cur, prev)


def _classify(e: grpc.aio.AioRpcError) -> str:
    """'compacted', 'future', 'overloaded', 'unavailable', 'cancelled' or 'error'.

    'overloaded' (etcd's "too many requests": its apply loop is behind) is refused
    before the request is proposed, so even a write may be retried."""
    code = e.code()
    details = (e.details() or "").lower()
    if "too many requests" in details:
        return "overloaded"
    if code == grpc.StatusCode.OUT_OF_RANGE:
        if "compacted" in details:
            return "compacted"
        if "future" in details:
            return "future"
        return "error"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "unavailable"
    if code == grpc.StatusCode.INTERNAL:
        # gRPC's transport says so when a member dies mid-stream ("Internal error
        # from Core", RST_STREAM); etcd itself does not use INTERNAL for request errors.
        return "unavailable"
    if code == grpc.StatusCode.CANCELLED:
        return "cancelled"
    if code == grpc.StatusCode.UNKNOWN and any(
        s in details for s in ("leader", "timed out", "stopped", "connection", "not capable", "socket", "reset")
    ):
        return "unavailable"
    return "error"


def _never_sent(e: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call certainly never reached a member: gRPC could not connect
    (no transport, so nothing was written), or etcd refused it before proposing."""
    details = (e.details() or "").lower()
    if "too many requests" in details:
        return True
    return e.code() == grpc.StatusCode.UNAVAILABLE and any(
        s in details for s in ("failed to connect", "connection refused", "no route to host"))


def _describe(e: grpc.aio.AioRpcError) -> str:
    return f"etcd {e.code().name.lower()}: {e.details() or ''}".rstrip(": ")


def _parse_version(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def progress_is_ordered(version: str) -> bool:
    """Whether an etcd server of `version` orders requested progress notifications
    after the events queued before them (and answers them for quiet watches)."""
    v = _parse_version(version)
    if len(v) < 2:
        return False
    if v[:2] > (3, 5):
        return True
    fixed = _PROGRESS_FIXED.get(v[:2])
    return fixed is not None and v >= fixed


def parse_endpoints(endpoints: Union[str, Sequence[str]]) -> tuple[list[tuple[str, int]], bool]:
    """[(host, port)], tls from "h:p,h:p", "http(s)://h:p" or a list of those."""
    if isinstance(endpoints, str):
        endpoints = [e for e in endpoints.split(",")]
    out: list[tuple[str, int]] = []
    tls = False
    for raw in endpoints:
        ep = raw.strip()
        if not ep:
            continue
        scheme, sep, rest = ep.partition("://")
        if sep:
            s = scheme.lower()
            if s in ("https", "etcds", "etcd+https", "unixs"):
                tls = True
            elif s not in ("http", "etcd", "etcd+http"):
                raise ValueError(f"unsupported etcd endpoint scheme in {raw!r}")
            ep = rest
        ep = ep.split("/", 1)[0].split("?", 1)[0]
        if ep.startswith("["):  # [v6]:port
            host, _, port = ep[1:].partition("]")
            port = port.lstrip(":")
        elif ep.count(":") == 1:
            host, port = ep.split(":")
        elif ep.count(":") > 1:  # bare IPv6
            host, port = ep, ""
        else:
            host, port = ep, ""
        if not host:
            raise ValueError(f"etcd endpoint {raw!r} has no host")
        out.append((host, int(port) if port else DEFAULT_PORT))
    if not out:
        raise ValueError("no etcd endpoints given")
    return out, tls


def _read_pem(v: Union[None, str, bytes, os.PathLike]) -> Optional[bytes]:
    if v is None:
        return None
    if isinstance(v, bytes):
        return v
    with open(v, "rb") as f:
        return f.read()


class EtcdStore(Store):
    """The Store contract on an etcd v3 cluster.

    `endpoints`: "host:port" strings (or "http(s)://host:port"); an https
    endpoint or any of `ca`/`cert`/`key` (PEM file paths or bytes) selects TLS.
    `request_timeout` bounds each request; `compact_interval`/`compact_keep`
    compact history on a timer (keep the newest `compact_keep` revisions; 0 turns
    the timer off), as the SQLite backend does."""

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        ca: Union[None, str, bytes, os.PathLike] = None,
        cert: Union[None, str, bytes, os.PathLike] = None,
        key: Union[None, str, bytes, os.PathLike] = None,
        server_name: Optional[str] = None,
        request_timeout: float = REQUEST_TIMEOUT,
        compact_interval: float = 300,
        compact_keep: int = 1000,
    ) -> None:
        self.endpoints, tls = parse_endpoints(endpoints)
        if (cert is None) != (key is None):
            raise ValueError("etcd client TLS needs both cert and key")
        self.tls = tls or ca is not None or cert is not None
        self._ca, self._cert, self._key = ca, cert, key
        self._server_name = server_name
        self.request_timeout = request_timeout
        self.compact_interval = compact_interval
        self.compact_keep = compact_keep
        self.server_version = ""
        self.progress_ordered = False  # see progress_is_ordered()
        self._channel: Optional[grpc.aio.Channel] = None
        self._kv_stub: Any = None
        self._watch_stub: Any = None
        self._maint_stub: Any = None
        self._rev = 0  # newest header revision seen
        self._compacted = 0  # newest compaction revision known
        self._watches: "weakref.WeakSet[EtcdWatch]" = weakref.WeakSet()
        self._compact_task: Optional[asyncio.Task] = None
        self._started = False
        self._closing = False

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Connect (waiting up to `request_timeout` for a member to answer), learn the
        server version, the current and the compacted revision."""
        if self._started:
            return
        _load_pb()
        target, name_override = await self._target()
        options: list[tuple[str, Any]] = [
            ("grpc.lb_policy_name", "round_robin"),
            ("grpc.keepalive_time_ms", 10_000),
            ("grpc.keepalive_timeout_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.max_send_message_length", 2**31 - 1),
            # etcd members come back in about a second: do not back off for minutes.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if self.tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read_pem(self._ca),
                private_key=_read_pem(self._key),
                certificate_chain=_read_pem(self._cert),
            )
            server_name = self._server_name or name_override
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.aio.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        self._kv_stub = _pbg.KVStub(self._channel)
        self._watch_stub = _pbg.WatchStub(self._channel)
        self._maint_stub = _pbg.MaintenanceStub(self._channel)
        try:
            st = await self._unary(self._maint_stub.Status, _pb.StatusRequest(), retry=True)
            self.server_version = st.version
            self.progress_ordered = progress_is_ordered(st.version)
            await self.current_revision()
            await self._refresh_compacted()
        except BaseException:
            await self._channel.close()
            self._channel = None
            raise
        self._started = True
        if self.compact_interval and self.compact_interval > 0:
            self._compact_task = asyncio.create_task(self._compact_loop(), name="etcd-compactor")

    async def close(self) -> None:
        """End every watch (pending iterations stop) and close the connection."""
        if self._closing:
            return
        self._closing = True
        if self._compact_task is not None:
            self._compact_task.cancel()
            try:
                await self._compact_task
            except (asyncio.CancelledError, Exception):
                pass
        for w in list(self._watches):
            w._close_from_store()
        self._watches = weakref.WeakSet()
        if self._channel is not None:
            await self._channel.close()

    async def _target(self) -> tuple[str, Optional[str]]:
        """A gRPC target naming every endpoint (round-robin), and the TLS name to verify."""
        eps = self.endpoints
        literal = []
        for host, port in eps:
            try:
                literal.append(ipaddress.ip_address(host))
            except ValueError:
                literal.append(None)
        # With an address-list target gRPC has no host name to verify the server
        # certificate against: use the first endpoint's (the `server_name` option
        # overrides it, for members whose certificates share a DNS name instead).
        if all(a is not None and a.version == 4 for a in literal):
            return "ipv4:" + ",".join(f"{h}:{p}" for h, p in eps), eps[0][0]
        if all(a is not None and a.version == 6 for a in literal):
            return "ipv6:" + ",".join(f"[{h}]:{p}" for h, p in eps), eps[0][0]
        if len(eps) == 1:
            h, p = eps[0]
            return f"dns:///{h}:{p}", None
        # Several names: resolve them now into one address list (IPv4 first).
        loop = asyncio.get_running_loop()
        v4: list[str] = []
        name = None
        for host, port in eps:
            if literal[eps.index((host, port))] is None:
                name = name or host
            infos = await loop.getaddrinfo(host, port, type=1)
            for fam, _, _, _, addr in infos:
                if fam == 2:
                    s = f"{addr[0]}:{addr[1]}"
                    if s not in v4:
                        v4.append(s)
        if not v4:
            raise UnavailableError(f"cannot resolve etcd endpoints {eps}")
        return "ipv4:" + ",".join(v4), name

    # ---- requests ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise StoreClosedError("store is closed")
        if self._channel is None:
            raise StorageError("store not started")

    async def _unary(self, method: Any, request: Any, *, retry: bool, revision: int = 0) -> Any:
        """One unary call; transient failures become UnavailableError, and are retried
        (until the deadline) only when `retry` (reads: always safe)."""
        self._check_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        backoff = 0.05
        while True:
            remaining = deadline - loop.time()
            try:
                return await method(request, timeout=max(remaining, 0.001))
            except grpc.aio.AioRpcError as e:
                kind = _classify(e)
                if self._closing:
                    raise StoreClosedError("store is closed") from None
                if kind == "compacted":
                    compacted = await self._compacted_after_error(revision)
                    raise CompactedError(revision, compacted) from None
                if kind == "future":
                    raise FutureRevisionError(revision, await self._current_or_known()) from None
                if kind in ("unavailable", "cancelled", "overloaded"):
                    if (retry or kind == "overloaded") and deadline - loop.time() > backoff:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 0.5)
                        continue
                    raise UnavailableError(_describe(e), maybe_applied=not (retry or _never_sent(e))) from None
                raise StorageError(_describe(e)) from None
            except (grpc.aio.UsageError, RuntimeError) as e:  # channel closed under us
                if self._closing:
                    raise StoreClosedError("store is closed") from None
                raise StorageError(f"etcd client: {e}") from None

    def _seen(self, rev: int) -> None:
        if rev > self._rev:
            self._rev = rev

    @property
    def last_seen_revision(self) -> int:
        """The newest revision any response has carried (no request; may lag other writers)."""
        return self._rev

    async def _current_or_known(self) -> int:
        try:
            return await self.current_revision()
        except StorageError:
            return self._rev

    async def check_health(self, timeout: float = 2.0) -> None:
        """One linearizable read of the `/registry/health` key under a short deadline and
        without retries, as upstream's etcd health check does; raises UnavailableError
        (or StorageError) when etcd does not answer in time."""
        self._check_open()
        try:
            await self._kv_stub.Range(_pb.RangeRequest(key=b"/registry/health", count_only=True), timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise UnavailableError(f"error getting data from etcd: {_describe(e)}", maybe_applied=False) from None
        except (grpc.aio.UsageError, RuntimeError) as e:
            raise StorageError(f"etcd client: {e}") from None

    # ---- reads ---------------------------------------------------------------------------

    async def current_revision(self) -> int:
        """The cluster's current revision: one linearizable, count-only range of one key."""
        resp = await self._unary(self._kv_stub.Range, _pb.RangeRequest(key=b"\0", count_only=True), retry=True)
        self._seen(resp.header.revision)
        return resp.header.revision

    async def get(self, key: str, *, revision: int = 0) -> Optional[KeyValue]:
        resp = await self._unary(
            self._kv_stub.Range, _pb.RangeRequest(key=key.encode(), revision=revision), retry=True, revision=revision
        )
        self._seen(resp.header.revision)
        if not resp.kvs:
            return None
        return _kv(resp.kvs[0])

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: Optional[str] = None
    ) -> ListResult:
        start, end = _prefix_range(prefix, start_after)
        req = _pb.RangeRequest(key=start, range_end=end, revision=revision, limit=max(limit, 0))
        resp = await self._unary(self._kv_stub.Range, req, retry=True, revision=revision)
        rev = resp.header.revision
        self._seen(rev)
        items = [_kv(m) for m in resp.kvs]
        more = bool(resp.more) and limit > 0
        return ListResult(items, revision or rev, more, resp.count)

    # ---- writes ----------------------------------------------------------------------------

    async def _txn(self, req: Any) -> Any:
        resp = await self._unary(self._kv_stub.Txn, req, retry=False)
        self._seen(resp.header.revision)
        return resp

    async def create(self, key: str, value: bytes) -> KeyValue:
        k = key.encode()
        req = _pb.TxnRequest(
            compare=[_pb.Compare(result=_pb.Compare.EQUAL, target=_pb.Compare.CREATE, key=k, create_revision=0)],
            success=[_pb.RequestOp(request_put=_pb.PutRequest(key=k, value=value))],
            failure=[_pb.RequestOp(request_range=_pb.RangeRequest(key=k))],
        )
        resp = await self._txn(req)
        if resp.succeeded:
            rev = resp.header.revision
            return KeyValue(key, value, rev, rev)
        kvs = resp.responses[0].response_range.kvs
        raise KeyExistsError(key, _kv(kvs[0]) if kvs else None)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        k = key.encode()
        if not expected_mod_revision:
            # etcd's mod_revision == 0 would match an absent key and create it;
            # the contract wants a precondition, like SQLite's backend.
            cur = await self.get(key)
            if cur is None:
                raise KeyNotFoundError(key)
            raise ConflictError(key, cur)
        req = _pb.TxnRequest(
            compare=[
                _pb.Compare(result=_pb.Compare.EQUAL, target=_pb.Compare.MOD, key=k, mod_revision=expected_mod_revision)
            ],
            success=[_pb.RequestOp(request_put=_pb.PutRequest(key=k, value=value, prev_kv=True))],
            failure=[_pb.RequestOp(request_range=_pb.RangeRequest(key=k))],
        )
        resp = await self._txn(req)
        if resp.succeeded:
            rev = resp.header.revision
            put = resp.responses[0].response_put
            crev = put.prev_kv.create_revision if put.HasField("prev_kv") else rev
            return KeyValue(key, value, rev, crev)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFoundError(key)
        raise ConflictError(key, _kv(kvs[0]))

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        k = key.encode()
        if not expected_mod_revision:
            resp = await self._unary(
                self._kv_stub.DeleteRange, _pb.DeleteRangeRequest(key=k, prev_kv=True), retry=False
            )
            self._seen(resp.header.revision)
            if not resp.deleted or not resp.prev_kvs:
                raise KeyNotFoundError(key)
            prev = resp.prev_kvs[0]
            return KeyValue(key, prev.value, resp.header.revision, prev.create_revision)
        req = _pb.TxnRequest(
            compare=[
                _pb.Compare(result=_pb.Compare.EQUAL, target=_pb.Compare.MOD, key=k, mod_revision=expected_mod_revision)
            ],
            success=[_pb.RequestOp(request_delete_range=_pb.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[_pb.RequestOp(request_range=_pb.RangeRequest(key=k))],
        )
        resp = await self._txn(req)
        if resp.succeeded:
            d = resp.responses[0].response_delete_range
            if not d.prev_kvs:  # cannot happen: the compare proved the key live
                raise KeyNotFoundError(key)
            prev = d.prev_kvs[0]
            return KeyValue(key, prev.value, resp.header.revision, prev.create_revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFoundError(key)
        raise ConflictError(key, _kv(kvs[0]))

    # ---- compaction ----------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Compact etcd's history up to `revision` (a no-op when it already is)."""
        if revision <= self._compacted:
            return
        try:
            await self._unary(self._kv_stub.Compact, _pb.CompactionRequest(revision=revision), retry=False,
                              revision=revision)
        except CompactedError:
            return  # someone compacted further already
        self._note_compacted(revision)

    def _note_compacted(self, revision: int) -> None:
        if revision > self._compacted:
            self._compacted = revision

    async def compacted_revision(self) -> int:
        """The compaction point: what this store did or saw, checked against etcd."""
        await self._refresh_compacted()
        return self._compacted

    async def _refresh_compacted(self) -> None:
        # A read at the known compaction point fails only if etcd compacted further.
        probe = max(self._compacted, 1)
        try:
            await self._unary(self._kv_stub.Range, _pb.RangeRequest(key=b"\0", count_only=True, revision=probe),
                              retry=True, revision=probe)
        except CompactedError:
            pass  # _compacted_after_error already learned the new point

    async def _compacted_after_error(self, requested: int) -> int:
        """etcd said `requested` is compacted without saying how far: ask a watch."""
        if self._compacted <= requested:
            learned = await self._probe_compacted()
            self._note_compacted(learned)
        return self._compacted

    async def _probe_compacted(self) -> int:
        """A watch from revision 1 is cancelled with etcd's compact_revision."""
        call = self._watch_stub.Watch()
        try:
            async with asyncio.timeout(self.request_timeout):
                await call.write(
                    _pb.WatchRequest(create_request=_pb.WatchCreateRequest(key=b"\0kyb-compaction-probe", start_revision=1))
                )
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        break
                    if resp.compact_revision:
                        return resp.compact_revision
                    if resp.canceled:
                        break
        except (TimeoutError, grpc.aio.AioRpcError) as e:
            log.debug("compaction probe failed: %s", e)
        finally:
            call.cancel()
        return self._compacted

    async def _compact_loop(self) -> None:
        while True:
            await asyncio.sleep(self.compact_interval)
            try:
                target = await self.current_revision() - self.compact_keep
                if target > self._compacted:
                    await self.compact(target)
            except StoreClosedError:
                return
            except StorageError as e:
                log.warning("periodic etcd compaction failed: %s", e)

    # ---- watch ----------------------------------------------------------------------------

    def watch(self, prefix: str, start_after: int) -> "EtcdWatch":
        """Events under `prefix` after `start_after`, then live; see EtcdWatch."""
        return EtcdWatch(self, prefix, start_after)


class EtcdWatch:
    """One watch on an EtcdStore: an async iterator of Events with SQLiteWatch's
    progress interface (`progress_revision`, `wait_progress`, `ended`).

    Stream and resumption.  The watch runs its own Watch RPC from a background
    task, created from `received + 1` (`received` = the newest revision taken off
    the stream) with prev_kv, so DELETE events carry the deleted value.  On any
    transient failure (member killed, restarted, lost its leader — the stream asks
    for a leader with `hasleader`) it re-creates the stream from `received + 1`
    with backoff and drops anything at or below `received`: no gap, no repeat.

    Progress.  `progress_revision` is P such that every event under the prefix with
    revision <= P has been returned by `__anext__`.  Events prove progress up to
    their own revision; a quiet prefix needs etcd's word: `wait_progress(rev)`
    sends progress requests on the stream, and a reply carrying revision R says
    all events up to R were sent before it.  Servers from 3.4.31 / 3.5.13 on keep
    that promise (`EtcdStore.progress_ordered`).  Older ones (Debian's 3.4.23, the
    3.5.1 wheel) may answer a progress request ahead of events already queued for
    the stream, or while a newly created watch is still catching up; against those
    a reply's revision is only accepted once a *second* reply has come back after
    it (by then the events queued before the first one have been sent), and only
    _SYNC_GRACE after the stream's watch was created (a watch registered behind
    the current revision catches up on the server's next 100 ms sync pass).
    That narrows the race to practically nothing but is not a proof; prefer a
    fixed etcd where consistent reads from the watch cache matter.

    Slow consumers.  Events taken off the stream wait in memory; more than
    WATCH_QUEUE_LIMIT of them end the watch with WatchTooSlowError (the consumer
    re-lists), as with SQLiteWatch."""

    def __init__(self, store: EtcdStore, prefix: str, start_after: int) -> None:
        self._store = store
        self.prefix = prefix
        self._key, self._end = _prefix_range(prefix)
        self._last = start_after  # newest revision returned by __anext__
        self._recv = start_after  # newest revision taken off the stream
        self._buf: collections.deque[Event] = collections.deque()
        self._waiter: Optional[asyncio.Future] = None
        self._progress_waiters: list[asyncio.Future] = []
        self._confirmed = start_after  # every event <= this has been taken off the stream
        self._candidate: Optional[int] = None  # unconfirmed progress reply (old servers)
        self._error: Optional[BaseException] = None
        self._closed = False
        self._done = False
        self._started = False
        self._task: Optional[asyncio.Task] = None
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._connected = False  # the current stream's watch is created
        self._watch_id = 0
        self._start_rev = 0  # start_revision of the current stream
        self._created_rev = 0  # header revision of its created response
        self._created_at = 0.0
        self._progress_sent = 0.0  # monotonic time of the unanswered progress request (0 = none)
        self.reconnects = 0  # streams re-created after failures (tests, metrics)

    def __aiter__(self) -> "EtcdWatch":
        return self

    # ---- progress ------------------------------------------------------------------------

    @property
    def progress_revision(self) -> int:
        if not self._started or self._done or self._error is not None:
            return self._last
        if self._buf:
            return max(self._last, self._buf[0].revision - 1)
        return max(self._last, self._confirmed)

    @property
    def ended(self) -> bool:
        """True once the watch has ended or will end (error pending, store closed)."""
        return self._done or self._error is not None or self._closed

    async def wait_progress(self, revision: int) -> None:
        """Return once `progress_revision >= revision`, or the watch has ended."""
        loop = asyncio.get_running_loop()
        if not self._started and not self.ended:
            self._start()
        while not self.ended and self.progress_revision < revision:
            fut = loop.create_future()
            self._progress_waiters.append(fut)
            timeout = 1.0  # re-check now and then: a reply can be lost with its stream
            try:
                if not self._buf and self._connected and self._confirmed < revision:
                    now = time.monotonic()
                    due = now if self._store.progress_ordered else self._sync_due()
                    if now < due:
                        timeout = due - now  # a reply now would not be believed
                    elif not self._progress_sent or now - self._progress_sent > 1.0:
                        self._progress_sent = now
                        await self._write(_pb.WatchRequest(progress_request=_pb.WatchProgressRequest()))
                if not fut.done():
                    await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                if timeout >= 1.0:
                    self._progress_sent = 0.0
            finally:
                if fut in self._progress_waiters:
                    self._progress_waiters.remove(fut)

    def _notify_progress(self) -> None:
        waiters, self._progress_waiters = self._progress_waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    def _sync_due(self) -> float:
        """Monotonic time from which the current stream's watch has (very probably)
        caught up on a server that does not order progress replies: etcd syncs a
        watch registered behind the current revision on its next 100 ms pass.
        (Neither the create response's revision nor the first events prove it:
        a write between the two moves a watch created "in the future" behind.)"""
        return self._created_at + _SYNC_GRACE

    def _on_progress(self, rev: int, requested: bool) -> None:
        if requested:
            self._progress_sent = 0.0
        if not self._connected:
            return
        if self._store.progress_ordered or not requested:
            # Fixed servers; or a periodic progress notification for our watch id,
            # which etcd queues behind the watch's events on every version.
            if rev > self._confirmed:
                self._confirmed = rev
        elif time.monotonic() < self._sync_due():
            self._candidate = None
        else:
            if self._candidate is not None and self._candidate > self._confirmed:
                self._confirmed = self._candidate
            self._candidate = rev
        self._notify_progress()

    # ---- iteration -----------------------------------------------------------------------

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        try:
            if not self._started:
                self._start()
            while True:
                if self._buf:
                    ev = self._buf.popleft()
                    self._last = ev.revision
                    if self._progress_waiters:
                        self._notify_progress()
                    return ev
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise StopAsyncIteration
                self._notify_progress()
                fut = asyncio.get_running_loop().create_future()
                self._waiter = fut
                try:
                    await fut
                finally:
                    self._waiter = None
        except BaseException as e:
            if not isinstance(e, asyncio.CancelledError):
                self._finish()
            raise

    def _start(self) -> None:
        store = self._store
        if store._closing:
            raise StoreClosedError("store is closed")
        if store._channel is None:
            raise StorageError("store not started")
        self._started = True
        if self._last < store._compacted:
            raise CompactedError(self._last, store._compacted)
        store._watches.add(self)
        self._task = asyncio.create_task(_run_watch(weakref.ref(self)), name=f"etcd-watch:{self.prefix}")

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, err: BaseException) -> None:
        if self._done or self._error is not None:
            return
        self._error = err
        self._buf.clear()
        self._connected = False
        self._stop_stream()
        self._wake()
        self._notify_progress()

    def _stop_stream(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()
        t = self._task
        if t is not None and not t.done() and t is not asyncio.current_task():
            t.cancel()

    def _close_from_store(self) -> None:
        self._closed = True
        self._connected = False
        self._stop_stream()
        self._wake()
        self._notify_progress()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        self._buf.clear()
        self._connected = False
        self._stop_stream()
        self._store._watches.discard(self)
        self._notify_progress()

    async def aclose(self) -> None:
        """Stop watching and release the stream."""
        self._finish()
        self._wake()

    def __del__(self) -> None:
        try:
            call, task = self._call, self._task
            if call is not None:
                call.cancel()
            if task is not None and not task.done():
                task.cancel()
        except Exception:
            pass

    # ---- the stream ----------------------------------------------------------------------

    async def _write(self, req: Any) -> None:
        call = self._call
        if call is None:
            return
        try:
            async with self._write_lock:
                await call.write(req)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError, RuntimeError) as e:
            log.debug("watch %s: write failed: %s", self.prefix, e)

    def _create_request(self) -> Any:
        self._start_rev = self._recv + 1
        self._connected = False
        self._candidate = None
        self._progress_sent = 0.0
        return _pb.WatchRequest(
            create_request=_pb.WatchCreateRequest(
                key=self._key, range_end=self._end, start_revision=self._start_rev, prev_kv=True, progress_notify=True
            )
        )

    def _on_response(self, resp: Any) -> str:
        """Handle one WatchResponse: 'ok', 'reconnect' or 'stop'."""
        if self._store._closing:
            self._close_from_store()
            return "stop"
        if resp.compact_revision:
            self._store._note_compacted(resp.compact_revision)
            self._fail(CompactedError(self._recv, resp.compact_revision))
            return "stop"
        if resp.created:
            self._connected = True
            self._watch_id = resp.watch_id
            self._created_rev = resp.header.revision
            self._created_at = time.monotonic()
            self._store._seen(resp.header.revision)
            self._notify_progress()
        if resp.canceled:
            reason = resp.cancel_reason or "watch cancelled by etcd"
            self._connected = False
            low = reason.lower()
            if any(s in low for s in ("leader", "timed out", "stopped", "too many")):
                return "reconnect"
            self._fail(StorageError(f"etcd watch on {self.prefix!r}: {reason}"))
            return "stop"
        if resp.events:
            threshold = self._recv
            for ev in resp.events:
                rev = ev.kv.mod_revision
                if rev <= threshold:
                    continue  # already received before a reconnect
                self._buf.append(_event(ev))
                if rev > self._recv:
                    self._recv = rev
            if self._recv > self._confirmed:
                self._confirmed = self._recv
            self._store._seen(self._recv)
            if len(self._buf) > WATCH_QUEUE_LIMIT:
                self._fail(WatchTooSlowError(self._last, f"more than {WATCH_QUEUE_LIMIT} events pending"))
                return "stop"
            self._wake()
            if self._progress_waiters:
                self._notify_progress()
            return "ok"
        if not resp.created and not resp.canceled:
            self._on_progress(resp.header.revision, requested=resp.watch_id != self._watch_id)
        return "ok"


async def _run_watch(wref: "weakref.ref[EtcdWatch]") -> None:
    """The stream loop of one EtcdWatch.  Holds the watch only weakly between
    messages, so an abandoned (never closed) watch is collected and its stream
    cancelled."""
    backoff = 0.05
    while True:
        w = wref()
        if w is None or w.ended:
            return
        store = w._store
        if store._closing or store._watch_stub is None:
            w._close_from_store()
            return
        call = store._watch_stub.Watch(metadata=(("hasleader", "true"),))
        w._call = call
        req = w._create_request()
        prefix = w.prefix
        del w
        reason = ""
        try:
            await call.write(req)
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    reason = "stream ended"
                    break
                w = wref()
                if w is None:
                    call.cancel()
                    return
                verdict = w._on_response(resp)
                if resp.created or resp.events:
                    backoff = 0.05
                del w
                if verdict == "stop":
                    call.cancel()
                    return
                if verdict == "reconnect":
                    reason = "cancelled by etcd"
                    break
        except asyncio.CancelledError:
            call.cancel()
            raise
        except grpc.aio.AioRpcError as e:
            kind = _classify(e)
            if kind not in ("unavailable", "cancelled", "overloaded"):
                w = wref()
                if w is not None:
                    w._fail(StorageError(_describe(e)))
                return
            reason = _describe(e)
        except (grpc.aio.UsageError, RuntimeError) as e:  # channel closed
            w = wref()
            if w is not None:
                if w._store._closing:
                    w._close_from_store()
                else:
                    w._fail(StorageError(f"etcd watch: {e}"))
            return
        except Exception as e:  # a bug: end the watch loudly rather than hang
            log.exception("etcd watch on %r failed", prefix)
            w = wref()
            if w is not None:
                w._fail(StorageError(f"etcd watch failed: {e}"))
            return
        call.cancel()
        w = wref()
        if w is None or w.ended:
            return
        w._connected = False
        w._call = None
        w.reconnects += 1
        log.info("etcd watch on %r: %s; resuming after revision %d", prefix, reason, w._recv)
        del w
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 1.0)
