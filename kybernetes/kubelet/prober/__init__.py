"""Container probes: exec (CRI ExecSync), httpGet, tcpSocket and grpc health checks, and the
per-container workers that turn results into readiness, startup and liveness verdicts."""

from kybernetes.kubelet.prober.manager import PodProbes
from kybernetes.kubelet.prober.probes import ProbeResult, run_probe

__all__ = ["PodProbes", "ProbeResult", "run_probe"]
