"""The official `kubernetes` Python client against a real `kyb server`."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException


@pytest.fixture(scope="module")
def ns(api):
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="pyclient")))
    return "pyclient"


def test_crud(api, ns):
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="one", labels={"k": "v"}), data={"a": "1"}))
    assert cm.metadata.uid and cm.metadata.resource_version and cm.metadata.creation_timestamp
    got = core.read_namespaced_config_map("one", ns)
    assert got.data == {"a": "1"} and got.metadata.uid == cm.metadata.uid
    got.data["b"] = "2"
    upd = core.replace_namespaced_config_map("one", ns, got)
    assert int(upd.metadata.resource_version) > int(cm.metadata.resource_version)
    patched = core.patch_namespaced_config_map("one", ns, {"metadata": {"labels": {"p": "q"}}})
    assert patched.metadata.labels == {"k": "v", "p": "q"}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="one")))
    assert e.value.status == 409 and "AlreadyExists" in e.value.body
    # a stale update is a conflict and changes nothing
    got.data["c"] = "3"
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("one", ns, got)
    assert e.value.status == 409 and "Conflict" in e.value.body
    assert "c" not in core.read_namespaced_config_map("one", ns).data
    core.delete_namespaced_config_map("one", ns)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("one", ns)
    assert e.value.status == 404


def test_generate_name_and_deployment(api, ns):
    apps = client.AppsV1Api(api)
    d = apps.create_namespaced_deployment(ns, client.V1Deployment(
        metadata=client.V1ObjectMeta(generate_name="web-"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "w"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "w"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))))
    assert d.metadata.name.startswith("web-") and len(d.metadata.name) == len("web-") + 5
    assert d.spec.replicas == 1 and d.metadata.generation == 1
    scale = apps.read_namespaced_deployment_scale(d.metadata.name, ns)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=w"
    apps.patch_namespaced_deployment_scale(d.metadata.name, ns, {"spec": {"replicas": 3}})
    d2 = apps.read_namespaced_deployment(d.metadata.name, ns)
    assert d2.spec.replicas == 3 and d2.metadata.generation == 2
    # status writes ignore spec; spec writes ignore status (the deployment controller also
    # writes status, so retry a stale read and judge the write by its own answer)
    for _ in range(20):
        d2 = apps.read_namespaced_deployment(d.metadata.name, ns)
        d2.status = client.V1DeploymentStatus(replicas=7, observed_generation=d2.metadata.generation)
        d2.spec.replicas = 9
        try:
            written = apps.replace_namespaced_deployment_status(d.metadata.name, ns, d2)
            break
        except ApiException as e:
            assert e.status == 409
    assert written.status.replicas == 7 and written.spec.replicas == 3
    assert apps.read_namespaced_deployment(d.metadata.name, ns).spec.replicas == 3
    for _ in range(20):
        d3 = apps.read_namespaced_deployment(d.metadata.name, ns)
        before = d3.status
        d3.status = client.V1DeploymentStatus(replicas=99)
        d3.spec.replicas = 4
        try:
            written = apps.replace_namespaced_deployment(d.metadata.name, ns, d3)
            break
        except ApiException as e:
            assert e.status == 409
    assert written.spec.replicas == 4 and written.status.replicas != 99


def test_pagination_is_a_consistent_snapshot(api, ns):
    core = client.CoreV1Api(api)
    for i in range(10):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"page-{i:02d}", labels={"page": "yes"})))
    first = core.list_namespaced_config_map(ns, label_selector="page=yes", limit=4)
    assert [c.metadata.name for c in first.items] == [f"page-{i:02d}" for i in range(4)]
    token = first.metadata.var_continue
    assert token
    # changes after the first page are not visible in later pages
    core.delete_namespaced_config_map("page-07", ns)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="page-05b", labels={"page": "yes"})))
    names = [c.metadata.name for c in first.items]
    while token:
        page = core.list_namespaced_config_map(ns, label_selector="page=yes", limit=4, _continue=token)
        names += [c.metadata.name for c in page.items]
        assert page.metadata.resource_version == first.metadata.resource_version
        token = page.metadata.var_continue
    assert names == [f"page-{i:02d}" for i in range(10)]


def test_watch_resume_from_resource_version(api, ns):
    core = client.CoreV1Api(api)
    lst = core.list_namespaced_config_map(ns)
    rv = lst.metadata.resource_version
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.patch_namespaced_config_map("w1", ns, {"data": {"x": "y"}})
    core.delete_namespaced_config_map("w1", ns)
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
        if ev["object"].metadata.name == "w1":
            seen.append(ev["type"])
        if len(seen) == 3:
            w.stop()
    assert seen == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_live_events(api, ns):
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    got: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume():
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
            got.append((ev["type"], ev["object"].metadata.name))
            if ev["object"].metadata.name == "live":
                w.stop()

    t = threading.Thread(target=consume)
    t.start()
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="live")))
    t.join(15)
    assert ("ADDED", "live") in got


def test_watch_from_compacted_version_is_410(api, ns):
    core = client.CoreV1Api(api)
    w = watch.Watch()
    with pytest.raises(ApiException) as e:
        for _ in w.stream(core.list_namespaced_config_map, ns, resource_version="1", timeout_seconds=5):
            pass
    assert e.value.status == 410


def test_list_with_expired_continue_is_410_or_400(api, ns):
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(ns, limit=1, _continue="not-a-token")
    assert e.value.status == 400
