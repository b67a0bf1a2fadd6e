"""Auditing (audit.k8s.io/v1): a policy decides per request how much to record, the
audit filter (apiserver.filters.audit) builds the event and hands a copy at each stage
to the backends (log file, webhook).

``setup(app, args)`` is what the server command calls: it loads the policy, builds the
backends from the flags, puts an ``Auditor`` into ``app["audit"]`` (or None) and
installs the response hook that sets the ``Audit-Id`` header on every response and logs
ResponseStarted for long-running requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kybernetes.apiserver.audit.backends import Backend, BatchConfig, LogBackend, Union, WebhookBackend
from kybernetes.apiserver.audit.events import HEADER_AUDIT_ID
from kybernetes.apiserver.audit.policy import Policy, PolicyError, load_policy, parse_policy

__all__ = ["Auditor", "Backend", "BatchConfig", "HEADER_AUDIT_ID", "LogBackend", "Policy", "PolicyError",
           "Union", "WebhookBackend", "from_args", "install", "load_policy", "parse_policy", "setup"]


@dataclass
class Auditor:
    policy: Policy
    backend: Backend

    async def start(self) -> None:
        await self.backend.start()

    async def shutdown(self) -> None:
        await self.backend.shutdown()


def from_args(args: Any) -> Optional[Auditor]:
    """The auditor the flags describe, or None when auditing is off (upstream: no
    policy file, or no backend, means no auditing)."""
    policy_file = getattr(args, "audit_policy_file", "") or ""
    log_path = getattr(args, "audit_log_path", "") or ""
    webhook = getattr(args, "audit_webhook_config_file", "") or ""
    if not policy_file or not (log_path or webhook):
        return None
    policy = load_policy(policy_file)
    backends: list[Backend] = []
    if log_path:
        backends.append(LogBackend(log_path, max_size_mb=int(getattr(args, "audit_log_maxsize", 0) or 0),
                                   max_backups=int(getattr(args, "audit_log_maxbackup", 0) or 0),
                                   max_age_days=int(getattr(args, "audit_log_maxage", 0) or 0)))
    if webhook:
        cfg = BatchConfig()
        for attr, name in (("buffer_size", "audit_webhook_batch_buffer_size"),
                           ("max_batch_size", "audit_webhook_batch_max_size"),
                           ("max_batch_wait", "audit_webhook_batch_max_wait"),
                           ("initial_backoff", "audit_webhook_initial_backoff")):
            v = getattr(args, name, None)
            if v is not None:
                setattr(cfg, attr, type(getattr(cfg, attr))(v))
        backends.append(WebhookBackend(webhook, cfg))
    return Auditor(policy, backends[0] if len(backends) == 1 else Union(backends))


def install(app: Any, auditor: Optional[Auditor]) -> None:
    """Put the auditor into the app and hook response preparation (before startup)."""
    from kybernetes.apiserver.filters.audit import on_response_prepare

    app["audit"] = auditor
    app.on_response_prepare.append(on_response_prepare)


async def setup(app: Any, args: Any) -> Optional[Auditor]:
    auditor = from_args(args)
    if auditor is not None:
        await auditor.start()
    install(app, auditor)
    return auditor
