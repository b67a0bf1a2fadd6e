"""The audit webhook backend (upstream plugin/pkg/audit/webhook, util/webhook) and the
three ways upstream wraps a backend (``--audit-webhook-mode``):

- ``batch`` (default): events go into a bounded buffer (``buffered.BufferedBackend``) and
  are POSTed in EventList batches off the request path; a full buffer drops the event
  and counts it;
- ``blocking``: the request waits while its event is POSTed; a failure is counted and
  otherwise ignored;
- ``blocking-strict``: as blocking, but when the RequestReceived event cannot be
  delivered the request itself fails with a 500 (the audit filter does that).

Every POST is retried with upstream's webhook backoff (initial delay, x1.5, 20% jitter,
5 attempts) on any error: the audit webhook treats every failure as worth retrying."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Optional

import orjson

from kybernetes.apiserver.audit.backends import Backend, Obj, plugin_error

log = logging.getLogger("kybernetes.audit")

PLUGIN_NAME = "webhook"
DEFAULT_INITIAL_BACKOFF = 10.0
REQUEST_TIMEOUT = 30.0  # upstream defaultRequestTimeout: the whole request incl. reading the body
BACKOFF_FACTOR = 1.5
BACKOFF_JITTER = 0.2
BACKOFF_STEPS = 5


class WebhookError(Exception):
    pass


class WebhookBackend(Backend):
    """POSTs audit.k8s.io/v1 EventLists to the server of a kubeconfig.  ``send`` is the
    delivery with retries; on its own (blocking modes) ``process_async`` sends one event."""

    name = PLUGIN_NAME

    def __init__(self, kubeconfig_path: str, initial_backoff: float = DEFAULT_INITIAL_BACKOFF, *,
                 strict: bool = False) -> None:
        super().__init__()
        from kybernetes.client.kubeconfig import load_kubeconfig, ssl_context

        self.kc = load_kubeconfig(kubeconfig_path)
        self.ssl = ssl_context(self.kc) if self.kc.server.startswith("https") else None
        self.initial_backoff = initial_backoff
        self.strict = strict  # blocking-strict: a failed delivery is reported to the caller
        self.session: Any = None
        self.delivered_total = 0  # events the webhook accepted (no upstream metric; for tests/diagnostics)
        self.attempts_total = 0   # POSTs made, retries included

    async def start(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else False)
        self.session = aiohttp.ClientSession(connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))

    async def shutdown(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def process(self, event: Obj) -> bool:
        raise RuntimeError("the webhook backend only works asynchronously (process_async)")

    async def process_async(self, event: Obj) -> bool:
        ok = await self.send([event])
        return ok or not self.strict

    async def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}
        if self.kc.token:
            headers["Authorization"] = f"Bearer {self.kc.token}"
        self.attempts_total += 1
        async with self.session.post(self.kc.server, data=body, headers=headers,
                                     server_hostname=self.kc.tls_server_name) as r:
            text = await r.read()
            if not 200 <= r.status < 300:
                raise WebhookError(f"the server responded with the status code {r.status} "
                                   f"({text[:200].decode(errors='replace').strip()!r})")

    async def send(self, events: list[Obj]) -> bool:
        """Deliver one batch, retrying with exponential backoff; False (and the events
        counted as errors) when every attempt failed."""
        if self.session is None:
            plugin_error(self, "audit backend shut down", events)
            return False
        body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
                             "items": events})
        delay = self.initial_backoff
        err = ""
        for step in range(BACKOFF_STEPS):
            try:
                await self._post(body)
                self.delivered_total += len(events)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is retried, as upstream's retryOnError
                err = str(e) or type(e).__name__
            if step == BACKOFF_STEPS - 1:
                break
            await asyncio.sleep(delay + random.random() * BACKOFF_JITTER * delay)
            delay *= BACKOFF_FACTOR
        plugin_error(self, err, events)
        return False


def make_webhook_backend(kubeconfig_path: str, mode: str, batch: Any, initial_backoff: float) -> Backend:
    """The webhook backend wrapped for ``mode`` (upstream AuditBatchOptions.wrapBackend)."""
    from kybernetes.apiserver.audit.buffered import BufferedBackend

    hook = WebhookBackend(kubeconfig_path, initial_backoff, strict=mode == "blocking-strict")
    if mode in ("blocking", "blocking-strict"):
        return hook
    return BufferedBackend(hook, batch)


def delegate_of(backend: Backend) -> Optional[WebhookBackend]:
    """The WebhookBackend inside ``backend`` (for tests and counters)."""
    if isinstance(backend, WebhookBackend):
        return backend
    inner = getattr(backend, "delegate", None)
    return inner if isinstance(inner, WebhookBackend) else None
