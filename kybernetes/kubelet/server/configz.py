"""`/configz`: the kubelet's effective configuration as upstream shows it, a
KubeletConfiguration (kubelet.config.k8s.io/v1beta1) under the "kubeletconfig" key, built
from the settings the running kubelet's parts hold (only the fields kybernetes has)."""

from __future__ import annotations

from typing import Any

from kybernetes.kubelet.eviction_thresholds import Value
from kybernetes.kubelet.node_status import MAX_PODS
from kybernetes.kubelet.server.auth import ALLOWED_TTL, DENIED_TTL


def go_duration(seconds: float) -> str:
    """Seconds as Go's time.Duration prints them: 0s, 500ms, 20s, 2m0s, 4h0m0s."""
    if seconds == 0:
        return "0s"
    if abs(seconds) < 1:
        ms = seconds * 1000
        return (f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs")
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    sec = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{sign}{int(h)}h{int(m)}m{sec}"
    if m:
        return f"{sign}{int(m)}m{sec}"
    return sign + sec


def _eviction(thresholds) -> dict[str, Any]:
    hard, soft, grace, reclaim = {}, {}, {}, {}
    for t in thresholds:
        value = str(Value(t.quantity, t.percentage))
        if t.hard:
            hard[t.signal] = value
        else:
            soft[t.signal] = value
            grace[t.signal] = go_duration(t.grace_period)
        if t.min_reclaim is not None:
            reclaim[t.signal] = str(t.min_reclaim)
    out: dict[str, Any] = {"evictionHard": hard}
    if soft:
        out["evictionSoft"], out["evictionSoftGracePeriod"] = soft, grace
    if reclaim:
        out["evictionMinimumReclaim"] = reclaim
    return out


def kubelet_config(kl, server) -> dict[str, Any]:
    """The KubeletConfiguration of kubelet `kl` served by `server` (KubeletServer)."""
    w, gc, ev = kl.workers, kl.image_gc, kl.eviction
    cfg: dict[str, Any] = {
        "enableServer": True,
        "syncFrequency": go_duration(w.resync),
        "address": server.address,
        "port": server.port,
        "authentication": {"x509": {"clientCAFile": str(server.client_ca)},
                           "webhook": {"enabled": True, "cacheTTL": go_duration(server.authn.ttl)},
                           "anonymous": {"enabled": False}},
        "authorization": {"mode": "Webhook",
                          "webhook": {"cacheAuthorizedTTL": go_duration(ALLOWED_TTL),
                                      "cacheUnauthorizedTTL": go_duration(DENIED_TTL)}},
        "enableDebuggingHandlers": True,
        "clusterDomain": w.cluster_domain,
        "clusterDNS": list(w.cluster_dns),
        "nodeStatusUpdateFrequency": go_duration(kl.node.status_interval),
        "nodeStatusReportFrequency": go_duration(kl.node.report_period),
        "imageMinimumGCAge": go_duration(gc.policy.min_age),
        "imageGCHighThresholdPercent": gc.policy.high_threshold,
        "imageGCLowThresholdPercent": gc.policy.low_threshold,
        "cgroupRoot": "/" + w.cgroup_root,
        "cgroupsPerQOS": True,
        "resolvConf": w.resolv_conf,
        "maxPods": MAX_PODS,
        "serializeImagePulls": w.images._serial is not None,
        "evictionPressureTransitionPeriod": go_duration(ev.transition_period),
        "evictionMaxPodGracePeriod": ev.max_pod_grace_period,
        "localStorageCapacityIsolation": ev.volume_usage is not None,
        "containerRuntimeEndpoint": kl.cri.endpoint,
        "podLogsDir": str(w.log_root),
        **_eviction(ev.thresholds),
    }
    if kl.static_pods is not None:
        cfg["staticPodPath"] = str(kl.static_pods.directory)
        cfg["fileCheckFrequency"] = go_duration(kl.static_pods.period)
    if kl.pod_cidrs:
        cfg["podCIDR"] = kl.pod_cidrs[0]
    cfg["kind"], cfg["apiVersion"] = "KubeletConfiguration", "kubelet.config.k8s.io/v1beta1"
    return {"kubeletconfig": cfg}
