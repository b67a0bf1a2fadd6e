"""Stats shaping: Go float spelling of the Prometheus text, the Summary API document,
/metrics/resource, usageNanoCores from two samples, pod sums from containers."""

from __future__ import annotations

from kybernetes.kubelet.stats import (
    ContainerSample,
    CPUSample,
    FsSample,
    MemorySample,
    NodeSample,
    PodSample,
    RateTracker,
    _fill_from_containers,
    build_summary,
    go_float,
    parse_net_dev,
    render_resource_metrics,
)

T = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def test_go_float_matches_strconv_g():
    cases = {0: "0", 1: "1", 503808: "503808", 999999: "999999", 1_000_000: "1e+06",
             1616273408: "1.616273408e+09", 254.050927655: "254.050927655", 0.0001: "0.0001",
             0.00001: "1e-05", 4.67812: "4.67812", 15761408: "1.5761408e+07", -2.5: "-2.5",
             1.7102115924097388e+09: "1.7102115924097388e+09", 120: "120"}
    for v, want in cases.items():
        assert go_float(v) == want, v


def sample_pod():
    c1 = ContainerSample("app", T - 10**9, cpu=CPUSample(T, 2_500_000_000, 50_000_000),
                         memory=MemorySample(T, usage=8 << 20, working_set=6 << 20, rss=4 << 20),
                         rootfs=FsSample(T, used=4096, inodes_used=3), logs=FsSample(T, used=8192, inodes_used=2))
    return PodSample("web", "ns1", "u-1", T - 2 * 10**9, containers=[c1],
                     network={"time": "2023-11-14T22:13:20Z", "name": "eth0", "rxBytes": 10, "interfaces": []})


def test_summary_document():
    node = NodeSample("n1", T - 3600 * 10**9, cpu=CPUSample(T, 10**12, 10**9),
                      memory=MemorySample(T, usage=2 << 30, working_set=1 << 30, available=3 << 30),
                      fs=FsSample(T, capacity=100, available=40, used=60, inodes=10, inodes_free=4, inodes_used=6),
                      image_fs=FsSample(T, capacity=100, available=40, used=20), maxpid=4194304, curproc=300)
    pods = [sample_pod()]
    _fill_from_containers(pods)
    s = build_summary(node, pods)
    n = s["node"]
    assert n["nodeName"] == "n1" and n["startTime"] == "2023-11-14T21:13:20Z"
    assert n["cpu"] == {"time": "2023-11-14T22:13:20Z", "usageNanoCores": 10**9, "usageCoreNanoSeconds": 10**12}
    assert n["memory"]["workingSetBytes"] == 1 << 30 and n["memory"]["availableBytes"] == 3 << 30
    assert "rssBytes" not in n["memory"]  # unknown values are left out, not zero
    assert n["fs"]["inodesUsed"] == 6 and n["runtime"]["imageFs"]["usedBytes"] == 20
    assert n["rlimit"] == {"time": "2023-11-14T22:13:20Z", "maxpid": 4194304, "curproc": 300}
    p = s["pods"][0]
    assert p["podRef"] == {"name": "web", "namespace": "ns1", "uid": "u-1"}
    c = p["containers"][0]
    assert c["name"] == "app" and c["cpu"]["usageNanoCores"] == 50_000_000
    assert c["memory"] == {"time": "2023-11-14T22:13:20Z", "usageBytes": 8 << 20, "workingSetBytes": 6 << 20,
                           "rssBytes": 4 << 20}
    assert c["rootfs"]["usedBytes"] == 4096 and c["logs"]["usedBytes"] == 8192
    # the pod had no pod-level numbers from the runtime: its containers' sums
    assert p["cpu"]["usageCoreNanoSeconds"] == 2_500_000_000 and p["memory"]["workingSetBytes"] == 6 << 20
    assert p["ephemeral-storage"]["usedBytes"] == 4096 + 8192 and p["ephemeral-storage"]["capacityBytes"] == 100
    assert p["network"]["rxBytes"] == 10


def test_resource_metrics_text():
    node = NodeSample("n1", T, cpu=CPUSample(T, 357_354_910_000), memory=MemorySample(T, working_set=1616273408))
    pods = [sample_pod()]
    _fill_from_containers(pods)
    text = render_resource_metrics(build_summary(node, pods))
    lines = text.splitlines()
    ms = T // 10**6
    assert "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds" in lines
    assert "# TYPE node_cpu_usage_seconds_total counter" in lines
    assert f"node_cpu_usage_seconds_total 357.35491 {ms}" in lines
    assert f"node_memory_working_set_bytes 1.616273408e+09 {ms}" in lines
    assert f'container_cpu_usage_seconds_total{{container="app",namespace="ns1",pod="web"}} 2.5 {ms}' in lines
    assert f'container_memory_working_set_bytes{{container="app",namespace="ns1",pod="web"}} 6.291456e+06 {ms}' in lines
    assert f'container_start_time_seconds{{container="app",namespace="ns1",pod="web"}} 1.699999999e+09 {ms - 1000}' in lines
    assert f'pod_cpu_usage_seconds_total{{namespace="ns1",pod="web"}} 2.5 {ms}' in lines
    assert lines[-1] == "resource_scrape_error 0"
    assert render_resource_metrics({}, scrape_error=True).splitlines()[-1] == "resource_scrape_error 1"


def test_usage_nano_cores_from_two_samples():
    r = RateTracker()
    first = CPUSample(T, 1_000_000_000)
    r.fill("c", first)
    assert first.usage_nano_cores is None  # one sample: no rate yet
    second = CPUSample(T + 2 * 10**9, 2_000_000_000)
    r.fill("c", second)
    assert second.usage_nano_cores == 500_000_000  # 1 core-second over 2 s = half a core
    given = CPUSample(T + 3 * 10**9, 2_100_000_000, 7)
    r.fill("c", given)
    assert given.usage_nano_cores == 100_000_000  # our own interval wins over the runtime's figure
    first_of_other = CPUSample(T, 5, 9)
    r.fill("d", first_of_other)
    assert first_of_other.usage_nano_cores == 9  # no sample of ours yet: the runtime's
    r.forget_except(set())
    assert r.prev == {}


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    4242      30    1    0    0     0          0         0     2121      20    2    0    0     0       0          0
"""


def test_net_dev_parsing():
    n = parse_net_dev(NET_DEV, T)
    assert n == {"time": "2023-11-14T22:13:20Z", "name": "eth0", "rxBytes": 4242, "rxErrors": 1, "txBytes": 2121,
                 "txErrors": 2, "interfaces": [{"name": "eth0", "rxBytes": 4242, "rxErrors": 1, "txBytes": 2121,
                                                "txErrors": 2}]}
    assert parse_net_dev(NET_DEV.rsplit("\n", 2)[0], T) is None  # loopback only
