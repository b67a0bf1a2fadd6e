"""Plain component counters appear on /metrics under upstream's names."""

from prometheus_client import REGISTRY, generate_latest

from kybernetes.apiserver import metrics_sources


class _Auditor:
    def __init__(self) -> None:
        self.n = 3

    def metrics(self) -> dict:
        return {"apiserver_audit_event_total": self.n,
                "apiserver_audit_error_total": {"webhook": 2},
                "apiserver_audit_requests_rejected_total": 0,
                "apiserver_audit_level_total": {"Metadata": 3}}


class _Reloader:
    def metrics(self) -> list:
        return [("apiserver_encryption_config_controller_automatic_reloads_total",
                 {"apiserver_id_hash": "sha256:x", "status": "success"}, 1.0)]


def test_counters_are_scraped_live_and_vanish_with_their_source() -> None:
    a, r = _Auditor(), _Reloader()
    metrics_sources.register(a, "audit")
    metrics_sources.register(r, "encryption-reload")
    text = generate_latest(REGISTRY).decode()
    assert "apiserver_audit_event_total 3.0" in text
    assert 'apiserver_audit_error_total{plugin="webhook"} 2.0' in text
    assert 'apiserver_audit_level_total{level="Metadata"} 3.0' in text
    assert ('apiserver_encryption_config_controller_automatic_reloads_total'
            '{apiserver_id_hash="sha256:x",status="success"} 1.0') in text
    a.n = 5
    assert "apiserver_audit_event_total 5.0" in generate_latest(REGISTRY).decode()
    metrics_sources.register(a, "audit")  # idempotent: no duplicate series
    assert generate_latest(REGISTRY).decode().count("apiserver_audit_event_total 5.0") == 1
    del a, r
    text = generate_latest(REGISTRY).decode()
    assert "apiserver_audit_event_total" not in text
    assert "automatic_reloads_total" not in text
