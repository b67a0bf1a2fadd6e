"""QoS classes, pod cgroup paths and pod-level limits as upstream's cgroupfs layout, and
the files written for them (into a fake cgroup v1 tree under tmp_path)."""

from __future__ import annotations

from kybernetes.kubelet import qos_cgroups as q


def pod(*containers, init=()):
    return {"spec": {"containers": list(containers), "initContainers": list(init)}}


def ctr(req=None, lim=None):
    return {"name": "c", "resources": {k: v for k, v in (("requests", req), ("limits", lim)) if v}}


def test_qos_class():
    assert q.qos_class(pod(ctr())) == "BestEffort"
    assert q.qos_class(pod(ctr(lim={"cpu": "1", "memory": "1Gi"}))) == "Guaranteed"
    assert q.qos_class(pod(ctr(req={"cpu": "1", "memory": "1Gi"}, lim={"cpu": "1", "memory": "1Gi"}))) == "Guaranteed"
    assert q.qos_class(pod(ctr(req={"cpu": "500m"}, lim={"cpu": "1", "memory": "1Gi"}))) == "Burstable"
    assert q.qos_class(pod(ctr(req={"memory": "1Gi"}))) == "Burstable"
    # an init container without limits makes a limited pod Burstable
    assert q.qos_class(pod(ctr(lim={"cpu": "1", "memory": "1Gi"}), init=[ctr(req={"cpu": "1"})])) == "Burstable"


def test_paths():
    assert q.pod_cgroup("kubepods", "u1", "Guaranteed") == "/kubepods/podu1"
    assert q.pod_cgroup("/kubepods/", "u1", "Burstable") == "/kubepods/burstable/podu1"
    assert q.pod_cgroup("kubepods", "u1", "BestEffort") == "/kubepods/besteffort/podu1"


def test_pod_resources():
    assert q.pod_resources(pod(ctr())) == q.PodResources(2)
    r = q.pod_resources(pod(ctr(lim={"cpu": "250m", "memory": "64Mi"}), ctr(lim={"cpu": "100m", "memory": "32Mi"})))
    assert r == q.PodResources(358, 35000, 96 << 20)
    # one container without a cpu limit: no pod quota; memory limits all set
    r = q.pod_resources(pod(ctr(req={"cpu": "100m"}, lim={"memory": "48Mi"})))
    assert r == q.PodResources(102, None, 48 << 20)
    # the largest init container counts when it exceeds the app containers' sum
    r = q.pod_resources(pod(ctr(lim={"cpu": "100m", "memory": "10Mi"}), init=[ctr(lim={"cpu": "2", "memory": "1Gi"})]))
    assert r == q.PodResources(2048, 200000, 1 << 30)


def test_pod_resources_count_runtime_class_overhead():
    p = pod(ctr(lim={"cpu": "250m", "memory": "64Mi"}))
    p["spec"]["overhead"] = {"cpu": "250m", "memory": "16Mi"}
    assert q.pod_resources(p) == q.PodResources(512, 50000, 80 << 20)
    # limits unset: the overhead raises the requests (shares) only
    p = pod(ctr(req={"cpu": "100m"}))
    p["spec"]["overhead"] = {"cpu": "100m", "memory": "16Mi"}
    assert q.pod_resources(p) == q.PodResources(204, None, None)


def test_ensure_pod_cgroup_v1(tmp_path):
    for h in ("cpu", "memory", "pids"):
        (tmp_path / h).mkdir()
    q.ensure_pod_cgroup("/kp/besteffort/podu", q.PodResources(2), tmp_path)
    assert (tmp_path / "cpu/kp/besteffort/podu/cpu.shares").read_text() == "2"
    assert (tmp_path / "cpu/kp/besteffort/podu/cpu.cfs_quota_us").read_text() == "-1"
    assert not (tmp_path / "memory/kp/besteffort/podu/memory.limit_in_bytes").exists()
    q.ensure_pod_cgroup("/kp/podg", q.PodResources(256, 25000, 1 << 20), tmp_path)
    assert (tmp_path / "cpu/kp/podg/cpu.cfs_quota_us").read_text() == "25000"
    assert (tmp_path / "cpu/kp/podg/cpu.cfs_period_us").read_text() == "100000"
    assert (tmp_path / "memory/kp/podg/memory.limit_in_bytes").read_text() == str(1 << 20)
    assert not (tmp_path / "pids/kp").exists()


def test_ensure_pod_cgroup_v2(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory")
    q.ensure_pod_cgroup("/kp/podg", q.PodResources(1024, 50000, 1 << 20), tmp_path)
    assert (tmp_path / "kp/podg/cpu.max").read_text() == "50000 100000"
    assert (tmp_path / "kp/podg/memory.max").read_text() == str(1 << 20)
    assert (tmp_path / "kp/podg/cpu.weight").read_text() == "39"


def test_update_qos_cgroups_v1(tmp_path):
    (tmp_path / "cpu").mkdir()
    q.update_qos_cgroups("kp", 1500, tmp_path)
    assert (tmp_path / "cpu/kp/burstable/cpu.shares").read_text() == "1536"
    assert (tmp_path / "cpu/kp/besteffort/cpu.shares").read_text() == "2"
    q.update_qos_cgroups("kp", 0, tmp_path)
    assert (tmp_path / "cpu/kp/burstable/cpu.shares").read_text() == "2"
    assert q.pod_cpu_request_milli(pod(ctr(req={"cpu": "250m"}), ctr(lim={"cpu": "1"}))) == 1250
