"""GET /metrics with kubectl: Prometheus text with the controllers' work queue metrics and
the API server's request metrics, readable by system:monitoring, refused to others."""

from __future__ import annotations

import base64
import re
import time

import pytest
import yaml

from kybernetes.auth import pki


def kubeconfig_for(kyb, tmp_path_factory, user: str, groups: list[str]):
    ca = pki.load_ca(kyb.data_dir)
    cert, key = pki.issue_client_cert(ca, user, groups, 1)
    cfg = yaml.safe_load(kyb.kubeconfig.read_text())
    cfg["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert).decode(),
                               "client-key-data": base64.b64encode(key).decode()}
    path = tmp_path_factory.mktemp(user) / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def monitor(kyb, tmp_path_factory):
    return kubeconfig_for(kyb, tmp_path_factory, "prom", ["system:monitoring"])


@pytest.fixture(scope="module")
def stranger(kyb, tmp_path_factory):
    return kubeconfig_for(kyb, tmp_path_factory, "jim", ["dev"])


def value(text: str, metric: str, **labels: str) -> float:
    """The sample of `metric` whose labels include `labels`."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][\w:]*)\{(.*)\} (\S+)$", line)
        if not m or m.group(1) != metric:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    raise AssertionError(f"no {metric}{labels}")


def scrape_until(kyb, cfg, ok, timeout: float = 30.0) -> str:
    """Scrape /metrics until `ok(text)` holds (the controllers work concurrently)."""
    deadline = time.monotonic() + timeout
    while True:
        text = kyb.kubectl("--kubeconfig", str(cfg), "get", "--raw", "/metrics").stdout
        try:
            if ok(text):
                return text
        except AssertionError:
            pass
        assert time.monotonic() < deadline, "metrics never showed the deployment's reconcile"


def test_metrics_for_system_monitoring(kyb, monitor):
    kyb.kubectl("create", "deployment", "mtr", "--image=busybox:1", "-n", "default")
    try:
        kyb.kubectl("get", "pods", "-n", "default")
        text = scrape_until(kyb, monitor, lambda t: value(t, "workqueue_work_duration_seconds_count", name="deployment") >= 1)
        assert "# TYPE workqueue_adds_total counter" in text
        assert "# TYPE workqueue_work_duration_seconds histogram" in text
        assert "# TYPE apiserver_request_duration_seconds histogram" in text
        assert value(text, "workqueue_adds_total", name="deployment") >= 1
        assert value(text, "workqueue_depth", name="replicaset") >= 0
        assert value(text, "workqueue_work_duration_seconds_count", name="deployment") >= 1
        for m in ("workqueue_queue_duration_seconds_bucket", "workqueue_unfinished_work_seconds",
                  "workqueue_longest_running_processor_seconds", "workqueue_retries_total"):
            assert m in text
        assert value(text, "apiserver_request_total", verb="LIST", resource="pods", scope="namespace", code="200",
                     group="", version="v1", component="apiserver") >= 1
        assert value(text, "apiserver_request_total", verb="POST", resource="deployments", group="apps",
                     scope="resource", code="201") >= 1
        assert value(text, "apiserver_request_duration_seconds_count", verb="LIST", resource="pods") >= 1
        assert "_created" not in text
    finally:
        kyb.kubectl("delete", "deployment", "mtr", "-n", "default")


def test_metrics_refused_without_the_role(kyb, stranger):
    p = kyb.kubectl("--kubeconfig", str(stranger), "get", "--raw", "/metrics", check=False)
    assert p.returncode != 0
    assert 'User "jim" cannot get path "/metrics"' in p.stderr
    text = kyb.kubectl("get", "--raw", "/metrics").stdout  # admin may
    assert value(text, "apiserver_request_total", verb="GET", code="403", resource="") >= 1


def test_unserved_paths_get_no_series_of_their_own(kyb):
    for path in ("/apis/nope.example.com/v1/things", "/api/v1/namespaces/default/pods/p/garbage"):
        assert kyb.kubectl("get", "--raw", path, check=False).returncode != 0
    text = kyb.kubectl("get", "--raw", "/metrics").stdout
    assert 'resource="things"' not in text and 'subresource="garbage"' not in text
    assert value(text, "apiserver_request_total", code="404", resource="", group="") >= 1
