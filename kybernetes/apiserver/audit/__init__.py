"""Auditing (audit.k8s.io/v1): a policy decides per request how much to record, the
audit filter (apiserver.filters.audit) builds the event and hands a copy at each stage
to the backends (log file, webhook).

``setup(app, args)`` is what the server command calls: it loads the policy, builds the
backends from the flags, puts an ``Auditor`` into ``app["audit"]`` (or None) and
installs the response hook that sets the ``Audit-Id`` header on every response and logs
ResponseStarted for long-running requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from kybernetes.apiserver.audit.backends import ALLOWED_MODES, Backend, LogBackend, Union
from kybernetes.apiserver.audit.buffered import BatchConfig, BufferedBackend
from kybernetes.apiserver.audit.events import HEADER_AUDIT_ID
from kybernetes.apiserver.audit.policy import Policy, PolicyError, load_policy, parse_policy
from kybernetes.apiserver.audit.webhook import DEFAULT_INITIAL_BACKOFF, WebhookBackend, make_webhook_backend

__all__ = ["ALLOWED_MODES", "AuditConfigError", "Auditor", "Backend", "BatchConfig", "BufferedBackend",
           "HEADER_AUDIT_ID", "LogBackend", "Policy", "PolicyError", "Union", "WebhookBackend", "add_flags",
           "from_args", "install", "load_policy", "parse_policy", "setup"]


class AuditConfigError(ValueError):
    """The audit flags do not make sense (upstream AuditOptions.Validate)."""


@dataclass
class Auditor:
    policy: Policy
    backend: Backend
    # counters named after upstream's metrics (the /metrics endpoint reads them)
    event_total: int = 0                # apiserver_audit_event_total
    requests_rejected_total: int = 0    # apiserver_audit_requests_rejected_total
    level_total: dict = field(default_factory=dict)  # apiserver_audit_level_total{level}

    async def start(self) -> None:
        await self.backend.start()

    async def shutdown(self) -> None:
        await self.backend.shutdown()

    def metrics(self) -> dict[str, Any]:
        """Every audit counter by its upstream metric name."""
        return {"apiserver_audit_event_total": self.event_total,
                "apiserver_audit_error_total": self.backend.error_counts(),
                "apiserver_audit_requests_rejected_total": self.requests_rejected_total,
                "apiserver_audit_level_total": dict(self.level_total)}


def _duration(v: Any) -> float:
    from kybernetes.client.leaderelection import parse_duration

    return parse_duration(v)


def _bool(v: str) -> bool:
    return str(v).lower() in ("1", "t", "true", "yes")


def add_flags(p: Any) -> None:
    """The --audit-webhook-* flags beyond the config file (upstream names and defaults).
    Durations take Go's form ("30s", "200ms") or plain seconds."""
    d = BatchConfig()
    p.add_argument("--audit-webhook-mode", default="batch",
                   help="Strategy for sending audit events: " + ",".join(ALLOWED_MODES))
    p.add_argument("--audit-webhook-batch-buffer-size", type=int, default=d.buffer_size)
    p.add_argument("--audit-webhook-batch-max-size", type=int, default=d.max_batch_size)
    p.add_argument("--audit-webhook-batch-max-wait", type=_duration, default=d.max_batch_wait)
    p.add_argument("--audit-webhook-batch-throttle-enable", type=_bool, default=d.throttle_enable)
    p.add_argument("--audit-webhook-batch-throttle-qps", type=float, default=d.throttle_qps)
    p.add_argument("--audit-webhook-batch-throttle-burst", type=int, default=d.throttle_burst)
    p.add_argument("--audit-webhook-initial-backoff", type=_duration, default=DEFAULT_INITIAL_BACKOFF)


def from_args(args: Any) -> Optional[Auditor]:
    """The auditor the flags describe, or None when auditing is off (upstream: no
    policy file, or no backend, means no auditing)."""
    policy_file = getattr(args, "audit_policy_file", "") or ""
    log_path = getattr(args, "audit_log_path", "") or ""
    webhook = getattr(args, "audit_webhook_config_file", "") or ""
    if webhook:
        from kybernetes.apiserver.audit.buffered import validate

        errs = validate("webhook", getattr(args, "audit_webhook_mode", "batch") or "batch", _batch_config(args))
        if errs:
            raise AuditConfigError("; ".join(errs))
    if not policy_file or not (log_path or webhook):
        return None
    policy = load_policy(policy_file)
    backends: list[Backend] = []
    if log_path:
        backends.append(LogBackend(log_path, max_size_mb=int(getattr(args, "audit_log_maxsize", 0) or 0),
                                   max_backups=int(getattr(args, "audit_log_maxbackup", 0) or 0),
                                   max_age_days=int(getattr(args, "audit_log_maxage", 0) or 0)))
    if webhook:
        backoff = getattr(args, "audit_webhook_initial_backoff", None)
        backends.append(make_webhook_backend(webhook, getattr(args, "audit_webhook_mode", "batch") or "batch",
                                             _batch_config(args),
                                             DEFAULT_INITIAL_BACKOFF if backoff is None else _duration(backoff)))
    return Auditor(policy, backends[0] if len(backends) == 1 else Union(backends))


def _batch_config(args: Any) -> BatchConfig:
    cfg = BatchConfig()
    for attr, conv in (("buffer_size", int), ("max_batch_size", int), ("max_batch_wait", _duration),
                       ("throttle_enable", lambda v: v if isinstance(v, bool) else _bool(v)),
                       ("throttle_qps", float), ("throttle_burst", int)):
        flag = {"max_batch_size": "max_size", "max_batch_wait": "max_wait"}.get(attr, attr)
        v = getattr(args, f"audit_webhook_batch_{flag}", None)
        if v is not None:
            setattr(cfg, attr, conv(v))
    return cfg

def install(app: Any, auditor: Optional[Auditor]) -> None:
    """Put the auditor into the app and hook response preparation (before startup)."""
    from kybernetes.apiserver.filters.audit import on_response_prepare

    app["audit"] = auditor
    app.on_response_prepare.append(on_response_prepare)
    if auditor is not None:
        from kybernetes.apiserver import metrics_sources

        metrics_sources.register(auditor, "audit")


async def setup(app: Any, args: Any) -> Optional[Auditor]:
    try:
        auditor = from_args(args)
    except AuditConfigError as e:  # bad flags stop the server with upstream's message, no traceback
        raise SystemExit(f"kyb server: {e}") from None
    if auditor is not None:
        await auditor.start()
    install(app, auditor)
    return auditor
