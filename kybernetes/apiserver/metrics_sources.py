"""Expose counters that components keep as plain numbers (audit, encryption-config
reload) on `/metrics`, under upstream's metric names.

Those components count without depending on prometheus_client; this module adapts
them at scrape time. `register` is idempotent per source, and sources are held weakly
so a stopped server's counters disappear with it.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["register", "audit_families", "encryption_reload_families"]

_HELP = {
    "apiserver_audit_event_total": "Counter of audit events generated and sent to the audit backend.",
    "apiserver_audit_error_total": "Counter of audit events that failed to be audited properly. "
                                   "Plugin identifies the plugin affected by the error.",
    "apiserver_audit_requests_rejected_total": "Counter of apiserver requests rejected due to an error in "
                                               "audit logging backend.",
    "apiserver_audit_level_total": "Counter of policy levels for audit events (1 per request).",
    "apiserver_encryption_config_controller_automatic_reloads_total":
        "Total number of reload successes and failures of encryption configuration split by apiserver identity.",
    "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds":
        "Timestamp of the last successful or failed reload of encryption configuration split by apiserver identity.",
}


def _counter(name: str) -> CounterMetricFamily:
    # prometheus_client appends _total itself to counter samples.
    return CounterMetricFamily(name.removesuffix("_total"), _HELP[name])


def audit_families(counts: dict[str, Any]) -> Iterator[Metric]:
    """Families for an Auditor.metrics() dict."""
    for name in ("apiserver_audit_event_total", "apiserver_audit_requests_rejected_total"):
        fam = _counter(name)
        fam.add_metric([], float(counts.get(name, 0)))
        yield fam
    for name, label in (("apiserver_audit_error_total", "plugin"), ("apiserver_audit_level_total", "level")):
        fam = CounterMetricFamily(name.removesuffix("_total"), _HELP[name], labels=[label])
        for value, n in sorted((counts.get(name) or {}).items()):
            fam.add_metric([value], float(n))
        yield fam


def encryption_reload_families(samples: Iterable[tuple[str, dict[str, str], float]]) -> Iterator[Metric]:
    """Families for EncryptionConfigReloader.metrics() samples."""
    fams: dict[str, Metric] = {}
    for name, labels, value in samples:
        fam = fams.get(name)
        if fam is None:
            keys = sorted(labels)
            if name.endswith("_total"):
                fam = CounterMetricFamily(name.removesuffix("_total"), _HELP[name], labels=keys)
            else:
                fam = GaugeMetricFamily(name, _HELP[name], labels=keys)
            fams[name] = fam
        fam.add_metric([labels[k] for k in sorted(labels)], value)
    yield from fams.values()


class _Sources:
    """One registry collector fanning out to the live sources."""

    def __init__(self) -> None:
        self._sources: list[tuple[weakref.ref, Callable[[Any], Iterable[Metric]]]] = []
        REGISTRY.register(self)

    def add(self, obj: Any, families: Callable[[Any], Iterable[Metric]]) -> None:
        self._sources = [(r, f) for r, f in self._sources if r() is not None and r() is not obj]
        self._sources.append((weakref.ref(obj), families))

    def collect(self) -> Iterator[Metric]:
        for ref, families in list(self._sources):
            obj = ref()
            if obj is not None:
                yield from families(obj)

    def describe(self) -> list[Metric]:
        # Empty: the set of families depends on which sources are live.
        return []


_SOURCES: _Sources | None = None


def register(obj: Any, kind: str) -> None:
    """Serve `obj`'s counters on /metrics: kind "audit" (an Auditor) or
    "encryption-reload" (an EncryptionConfigReloader)."""
    global _SOURCES
    if _SOURCES is None:
        _SOURCES = _Sources()
    if kind == "audit":
        _SOURCES.add(obj, lambda a: audit_families(a.metrics()))
    elif kind == "encryption-reload":
        _SOURCES.add(obj, lambda r: encryption_reload_families(r.metrics()))
    else:
        raise ValueError(f"unknown metrics source kind {kind!r}")
