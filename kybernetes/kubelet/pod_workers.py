"""Pod workers: one task per pod that drives the pod towards its spec through the CRI
(sandbox, init containers in order, app containers, restarts with back-off, graceful
termination) and writes the pod status through pods/status."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from kybernetes.client import Client, ClientError, Conflict, NotFound
from kybernetes.cri import CRIError, CRIUnavailable, pb
from kybernetes.kubelet import pod_status as ps
from kybernetes.kubelet import (active_deadline, env_sources, ephemeral, image_pull, pod_dns, qos_cgroups,
                                security_context, sysctls)
from kybernetes.kubelet import runtime_cleanup as cleanup
from kybernetes.kubelet import termination as term
from kybernetes.kubelet.events import NORMAL, WARNING, EventRecorder
from kybernetes.kubelet.lifecycle import MIN_GRACE_SECONDS, run_hook
from kybernetes.kubelet.prober import PodProbes
from kybernetes.kubelet.prober.manager import Running
from kybernetes.kubelet.prober.netns import sandbox_netns
from kybernetes.kubelet.runtime_class import RuntimeClassError, runtime_handler
from kybernetes.kubelet.service_env import ServiceEnv, ServicesNotSynced
from kybernetes.kubelet.volumes import ContainerConfigError, MountedVolume, VolumeError, VolumeManager

log = logging.getLogger("kybernetes.kubelet.pods")
Obj = dict[str, Any]

L_UID = "io.kubernetes.pod.uid"
L_NAME = "io.kubernetes.pod.name"
L_NS = "io.kubernetes.pod.namespace"
L_CONTAINER = "io.kubernetes.container.name"
L_KIND = "kyb.io/container-kind"  # "init", "app" or "ephemeral"
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
SANDBOX_RETRY = 5.0  # seconds before a pod whose sandbox could not be created is synced again


def is_sidecar(c: Obj) -> bool:
    """An init container with restartPolicy Always runs beside the app containers."""
    return c.get("restartPolicy") == "Always"


def pull_policy(c: Obj) -> str:
    if c.get("imagePullPolicy"):
        return c["imagePullPolicy"]
    img = c.get("image", "")
    tag = img.rsplit("/", 1)[-1]
    return "Always" if ":" not in tag and "@" not in img or tag.endswith(":latest") else "IfNotPresent"


def observe(workers: Any, event: str, *args: Any) -> None:
    """Report `event` to the pod workers' metrics observer, if any (kubelet.server.
    metrics_endpoint); a failing observer never fails a sync."""
    observer = getattr(workers, "observer", None)
    if observer is not None:
        try:
            getattr(observer, event)(*args)
        except Exception:
            log.exception("kubelet metrics: %s", event)


class PodWorker:
    def __init__(self, workers: "PodWorkers", uid: str, pod: Obj):
        self.w = workers
        self.uid = uid
        self.pod = pod
        self.wake = asyncio.Event()
        self.wake.set()
        self.task: Optional[asyncio.Task] = None
        self.last_status: Optional[Obj] = None
        self.written_over_rv: Optional[str] = None  # resourceVersion of self.pod when last_status was written
        self.stored_status: Optional[Obj] = None    # last_status as the API stored it (the patch's answer)
        self.backoff: dict[str, tuple[float, float]] = {}  # container -> (delay, not_before)
        self.waiting: dict[str, tuple[str, str]] = {}       # container -> (reason, message)
        self.start_time: Optional[str] = None
        self.volumes: dict[str, MountedVolume] = {}
        self.probes = PodProbes(workers.cri, self.wake.set, on_failure=self.probe_failed,
                                on_result=lambda kind, name, result, secs:
                                observe(workers, "probe_result", self.pod, kind, name, result, secs))
        self.first_seen = time.monotonic()  # for the pod start latency metric
        self.seen_running = False
        self.syncs = 0
        self.netns: Optional[str] = None
        self.netns_sid = ""
        self.initialized = False   # init containers done (sidecars started) in sandbox initialized_sid
        self.initialized_sid = ""
        self.done = False
        self.eviction: Optional[str] = None  # the message, once the eviction manager chose this pod
        self.eviction_grace, self.eviction_condition = 0, True  # its grace period, DisruptionTarget or not
        self.rejection: Optional[tuple[str, str]] = None  # (reason, message) when not admitted
        self.deadline_timer: Optional[asyncio.TimerHandle] = None  # wakes the worker at activeDeadlineSeconds

    def update(self, pod: Obj) -> None:
        old, self.pod = self.pod, pod
        if self.last_status is not None and _status_only_change(old, pod) and \
                not self.status_drifted(pod):
            # our own status write coming back through the watch: nothing to drive (as
            # upstream, where status updates never reach the pod workers); with many pods
            # starting at once a full resync per echo crowds the CRI.  A status someone
            # else changed (the node lifecycle controller's Ready=False) does wake the
            # worker, which writes the kubelet's view back.
            return
        self.wake.set()

    def status_drifted(self, pod: Obj) -> bool:
        """Whether `pod` (as the informer has it) no longer shows the status the kubelet
        last wrote, in the fields and conditions the kubelet owns."""
        if self.last_status is None:
            return False
        return ps.status_drifted(self.last_status, self.stored_status or self.last_status, pod.get("status") or {})

    def event(self, etype: str, reason: str, message: str, container: Optional[str] = None) -> None:
        if self.w.events is not None:
            self.w.events.pod_event(self.pod, etype, reason, message, container)

    def probe_failed(self, kind: str, container: str, output: str) -> None:
        self.event(WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {output}", container)

    async def run(self) -> None:
        while not self.done:
            try:
                await asyncio.wait_for(self.wake.wait(), self.w.resync)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            start = time.monotonic()
            # upstream's sync types: the first sync creates, a deleted pod is killed
            op = "kill" if self.pod["metadata"].get("deletionTimestamp") else "create" if self.syncs == 0 else "sync"
            try:
                await self.sync()
                observe(self.w, "pod_worker_duration", op, time.monotonic() - start)
                self.syncs += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("syncing pod %s", self.name)
                await asyncio.sleep(1.0)

    @property
    def host_network(self) -> bool:
        return bool((self.pod.get("spec") or {}).get("hostNetwork"))

    @property
    def is_static(self) -> bool:
        """A pod from the kubelet's manifest directory, not from the API server."""
        src = ((self.pod.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/config.source")
        return src not in (None, "api")

    @property
    def name(self) -> str:
        m = self.pod.get("metadata") or {}
        return f"{m.get('namespace')}/{m.get('name')}"

    # ------------------------------------------------------------ sync
    async def sync(self) -> None:
        pod = self.pod
        meta = pod["metadata"]
        cri = self.w.cri
        if meta.get("deletionTimestamp"):
            await self.kill(grace=int(meta.get("deletionGracePeriodSeconds") or 0))
            try:
                await self.w.pods.delete(meta["name"], meta["namespace"], grace_period_seconds=0,
                                         preconditions={"uid": self.uid})
            except (NotFound, Conflict):
                pass
            self.done = True
            self.w.forget(self.uid)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and self.last_status is None:
            await self.kill(grace=0, keep_sandbox_record=True)
            return
        terminal = (self.last_status or {}).get("phase") in ("Succeeded", "Failed")
        if terminal:
            return
        if self.rejection is not None:
            await self.reject(*self.rejection)
            return
        if self.eviction is not None:
            await self.evicted(self.eviction)
            return
        if self.past_active_deadline():
            await self.deadline_exceeded()
            return
        sandboxes = await cri.list_pod_sandbox(labels={L_UID: self.uid})
        ready = [s for s in sandboxes if s.state == pb.SANDBOX_READY]
        containers = await cri.list_containers(labels={L_UID: self.uid})
        try:
            # every sync refreshes API data volumes, so configMap/secret updates propagate
            self.volumes = await self.w.volumes.setup(pod)
        except VolumeError as e:
            log.warning("pod %s: %s", self.name, e)
            self.event(WARNING, "FailedMount", str(e))
            if not ready:
                # nothing can start yet: report ContainerCreating and retry soon
                await self.write_status("", "", {}, False, False)
                asyncio.get_running_loop().call_later(2.0, self.wake.set)
                return
        if not ready:
            attempt = len(sandboxes)
            try:
                sid, sconfig = await self.run_sandbox(attempt)
            except CRIUnavailable:
                raise  # containerd away: retried by the worker loop, the status stays as it is
            except (RuntimeClassError, CRIError) as e:
                # upstream: a FailedCreatePodSandBox event, the pod stays ContainerCreating, retried later
                text = image_pull.grpc_error_text(e) if isinstance(e, CRIError) else str(e)
                self.event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {text}")
                await self.write_status("", "", {}, False, False)
                asyncio.get_running_loop().call_later(SANDBOX_RETRY, self.wake.set)
                return
            containers = []
            # Containers of a dead sandbox restart in the new one.
        else:
            sid = sorted(ready, key=lambda s: s.created_at)[-1].id
            sconfig = self.sandbox_config(sorted(ready, key=lambda s: s.created_at)[-1].metadata.attempt)
        st = await cri.pod_sandbox_status(sid)
        pod_ip = st.status.network.ip if st.status.HasField("network") else ""
        if self.host_network:  # the runtime reports no IP for the node's network: the pod has the node's
            pod_ip = self.w.host_ip
        latest = self.latest(containers, sid)
        spec = pod["spec"]
        policy = spec.get("restartPolicy") or "Always"
        init_failed = False
        if self.initialized_sid != sid:
            self.initialized_sid, self.initialized = sid, False
        await self.update_probes(spec, latest, sid, pod_ip)
        if ready:  # ephemeral containers start in a sandbox that already ran (upstream's order)
            await ephemeral.start_new(self, sid, sconfig, containers, latest, pod_ip)
        # init containers, in order; a sidecar (restartPolicy Always) counts once it has started
        init_done = True
        for c in spec.get("initContainers") or []:
            cur = latest.get(c["name"])
            if cur is None:
                await self.start_container(sid, sconfig, c, 0, "init", pod_ip)
                init_done = False
                break
            if is_sidecar(c):
                if cur.state == pb.CONTAINER_RUNNING and not await self.enforce_liveness(c, cur, sid, pod_ip):
                    if self.probes.started(c["name"], cur.id):
                        continue
                elif cur.state == pb.CONTAINER_EXITED:
                    await self.maybe_restart(sid, sconfig, c, cur, "init", pod_ip)  # always, whatever the pod's policy
                if self.initialized:
                    continue  # once the pod is initialized, a sidecar restart never holds back the app containers
                init_done = False
                break
            if cur.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_CREATED):
                init_done = False
                break
            code = (await cri.container_status(cur.id)).status.exit_code
            if code == 0:
                continue
            init_done = False
            if policy == "Never":
                init_failed = True
            else:
                await self.maybe_restart(sid, sconfig, c, cur, "init", pod_ip)
            break
        if init_done and not init_failed:
            self.initialized = True
            for c in spec.get("containers") or []:
                cur = latest.get(c["name"])
                if cur is None:
                    await self.start_container(sid, sconfig, c, 0, "app", pod_ip)
                    continue
                if cur.state == pb.CONTAINER_RUNNING:
                    await self.enforce_liveness(c, cur, sid, pod_ip)
                    continue
                if cur.state != pb.CONTAINER_EXITED:
                    continue
                code = (await cri.container_status(cur.id)).status.exit_code
                if policy == "Always" or (policy == "OnFailure" and code != 0):
                    await self.maybe_restart(sid, sconfig, c, cur, "app", pod_ip)
        containers = await cri.list_containers(labels={L_UID: self.uid})
        await self.write_status(sid, pod_ip, self.latest(containers, sid), init_failed, init_done)
        self.past_active_deadline()  # arms the deadline's timer now that the pod has a start time

    def past_active_deadline(self) -> bool:
        """Whether the pod ran past spec.activeDeadlineSeconds; if not, a timer wakes the
        worker when it will (re-armed on every sync, so a shortened deadline counts)."""
        left = active_deadline.remaining(self.pod, self.start_time)
        if self.deadline_timer is not None:
            self.deadline_timer.cancel()
            self.deadline_timer = None
        if left is None:
            return False
        if left <= 0:
            return True
        self.deadline_timer = asyncio.get_running_loop().call_later(left + 0.05, self.wake.set)
        return False

    async def deadline_exceeded(self) -> None:
        """Past the active deadline: stop the containers with the pod's grace period and
        report the pod Failed with reason DeadlineExceeded (no DisruptionTarget, as upstream)."""
        self.event(NORMAL, active_deadline.REASON, active_deadline.MESSAGE)
        self.eviction_grace, self.eviction_condition = self.grace_period(), False
        await self.evicted(active_deadline.MESSAGE, active_deadline.REASON)

    async def enforce_liveness(self, c: Obj, cur, sid: str, pod_ip: str) -> bool:
        """Kill a running container whose liveness or startup probe failed; True if it did."""
        why = self.probes.failed(c["name"], cur.id)
        if why is None:
            return False
        log.info("pod %s: %s", self.name, why)
        probe_grace = (c.get("livenessProbe") or {}).get("terminationGracePeriodSeconds")
        await self.kill_container(c, cur.id, self.grace_period(c) if probe_grace is None else int(probe_grace),
                                  why, pod_ip=pod_ip, sid=sid)
        self.wake.set()  # restart (or not) on the next pass, per restartPolicy
        return True

    async def update_probes(self, spec: Obj, latest: dict, sid: str, pod_ip: str) -> None:
        """Tell the probe workers which container instances run now (and where)."""
        probed = [c for c in [*filter(is_sidecar, spec.get("initContainers") or []), *(spec.get("containers") or [])]
                  if c.get("livenessProbe") or c.get("readinessProbe") or c.get("startupProbe")]
        if not probed:
            return
        netns = await self.sandbox_netns(sid)
        running: dict[str, Running] = {}
        for c in probed:
            cur = latest.get(c["name"])
            if cur is not None and cur.state == pb.CONTAINER_RUNNING:
                st = (await self.w.cri.container_status(cur.id)).status
                running[c["name"]] = Running(cur.id, st.started_at / 1e9, c)
        self.probes.update(probed, running, pod_ip, netns)

    async def sandbox_netns(self, sid: str) -> Optional[str]:
        """The sandbox's network namespace (probes and httpGet hooks connect from there)."""
        if self.netns_sid != sid:
            try:
                self.netns = sandbox_netns(await self.w.cri.pod_sandbox_status(sid, verbose=True))
            except CRIError:
                self.netns = None
            self.netns_sid = sid
        return self.netns

    def pod_ip(self) -> str:
        return (self.pod.get("status") or {}).get("podIP") or ""

    def grace_period(self, c: Optional[Obj] = None) -> int:
        spec = self.pod.get("spec") or {}
        g = spec.get("terminationGracePeriodSeconds")
        return 30 if g is None else int(g)

    async def kill_container(self, c: Obj, cid: str, grace: int, reason: str, *, pod_ip: str = "",
                             sid: str = "") -> None:
        """Stop one container: run its preStop hook within the grace period, then its stop
        signal, then SIGKILL after what remains of the grace period (at least 2 s when a
        hook ran), as upstream's killContainer."""
        pre = (c.get("lifecycle") or {}).get("preStop")
        if pre and grace > 0:
            t0 = time.monotonic()
            netns = await self.sandbox_netns(sid) if sid else self.netns
            err = await run_hook(pre, c, cri=self.w.cri, cid=cid, pod_ip=pod_ip or self.pod_ip(), netns=netns,
                                 timeout=grace)
            if err:
                log.warning("pod %s: FailedPreStopHook: %s", self.name, err)
                self.event(WARNING, "FailedPreStopHook", err, c.get("name"))
            grace = max(MIN_GRACE_SECONDS, grace - int(time.monotonic() - t0))
        self.event(NORMAL, "Killing", reason if reason.startswith("Container ") else f"Stopping container {c['name']}",
                   c.get("name"))
        try:
            await self.w.cri.stop_container(cid, timeout=grace)
        except CRIError as e:
            log.warning("stopping %s of %s (%s): %s", c["name"], self.name, reason, e)

    def latest(self, containers: list, sid: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in containers:
            if c.pod_sandbox_id != sid:
                continue
            n = c.labels.get(L_CONTAINER, c.metadata.name)
            if n not in out or c.metadata.attempt > out[n].metadata.attempt:
                out[n] = c
        return out

    # ------------------------------------------------------------ sandbox
    def sandbox_config(self, attempt: int) -> "pb.PodSandboxConfig":
        meta = self.pod["metadata"]
        log_dir = self.w.log_root / f"{meta['namespace']}_{meta['name']}_{self.uid}"
        log_dir.mkdir(parents=True, exist_ok=True)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=meta["name"], uid=self.uid, namespace=meta["namespace"],
                                           attempt=attempt),
            # a host-network pod keeps the node's hostname (and its network, ipc and pid as asked)
            hostname="" if self.host_network else pod_dns.sandbox_hostname(self.pod, self.w.cluster_domain),
            log_directory=str(log_dir),
            dns_config=self.dns_config(),
            labels={L_UID: self.uid, L_NAME: meta["name"], L_NS: meta["namespace"]},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.w.cgroup_parent(self.uid, self.pod),
                sysctls=sysctls.sandbox_sysctls(self.pod),
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=security_context.namespace_options(self.pod),
                    **security_context.sandbox_identity(self.pod))),
        )

    def dns_config(self) -> "pb.DNSConfig":
        d = pod_dns.pod_dns(self.pod, cluster_dns=self.w.cluster_dns, cluster_domain=self.w.cluster_domain,
                            host=self.w.host_dns)
        return pb.DNSConfig(servers=d.servers, searches=d.searches, options=d.options)

    async def run_sandbox(self, attempt: int) -> tuple[str, "pb.PodSandboxConfig"]:
        await self.w.load_host_dns()
        cfg = self.sandbox_config(attempt)
        # the pod cgroup with its pod-level limits exists before the runtime nests into it
        await self.w.update_qos_cgroups()
        await asyncio.to_thread(qos_cgroups.ensure_pod_cgroup, cfg.linux.cgroup_parent,
                                qos_cgroups.pod_resources(self.pod))
        handler = await runtime_handler(self.w.client, self.pod)
        try:
            sid = await self.w.cri.run_pod_sandbox(cfg, handler)
        except CRIError:
            observe(self.w, "pod_sandbox_started", False)
            raise
        observe(self.w, "pod_sandbox_started", True)
        if self.start_time is None:
            self.start_time = ps.now()
        return sid, cfg

    # ------------------------------------------------------------ containers
    async def ensure_image(self, c: Obj, sconfig=None) -> Optional[str]:
        """The container's image, pulled per its pull policy with the pod's pull secrets and
        the node's pull back-off (kubelet.image_pull); None, with the waiting reason set, if
        it is not there."""
        ref, reason, msg = await self.w.images.ensure_image(
            self.pod, c, pull_policy(c), self.pull_secrets, sandbox_config=sconfig,
            event=lambda etype, why, text: self.event(etype, why, text, c["name"]))
        if ref is not None:
            return ref
        self.waiting[c["name"]] = (reason, msg)
        self.event(WARNING, "Failed", f"Error: {reason}", c["name"])
        if reason in (image_pull.ERR_IMAGE_PULL, image_pull.IMAGE_PULL_BACKOFF):
            # look again within the back-off (ImagePullBackOff shows) and once it ends
            left = self.w.images.retry_in(self.pod, c)
            asyncio.get_running_loop().call_later(min(left, self.w.images.backoff.initial / 2) + 0.05,
                                                  self.wake.set)
        return None

    async def pull_secrets(self) -> list[Obj]:
        """The pod's imagePullSecrets that can be read, with upstream's warning for the rest."""
        secrets, failed = await image_pull.pull_secrets(self.w.client, self.pod)
        if failed:
            self.event(WARNING, "FailedToRetrieveImagePullSecret",
                       f"Unable to retrieve some image pull secrets ({', '.join(failed)}); "
                       "attempting to pull the image may not succeed.")
        return secrets

    async def start_container(self, sid: str, sconfig, c: Obj, attempt: int, kind: str, pod_ip: str,
                              target_id: str = "") -> None:
        if await self.ensure_image(c, sconfig) is None:
            return
        try:
            env = ps.container_env(self.pod, c, pod_ip=pod_ip, host_ip=self.w.host_ip,
                                   service_env=self.w.service_env.for_pod(self.pod, static=self.is_static),
                                   allocatable=getattr(self.w.volumes, "node_allocatable", dict)(),
                                   sources=await env_sources.fetch(c, self.env_object))
        except (ServicesNotSynced, VolumeError, env_sources.EnvSourceError, ClientError) as e:
            self.waiting[c["name"]] = ("CreateContainerConfigError", str(e))
            self.event(WARNING, "Failed", f"Error: {e}", c["name"])
            if isinstance(e, ServicesNotSynced):  # the services informer syncs soon; the rest waits for a resync
                asyncio.get_running_loop().call_later(1.0, self.wake.set)
            return
        envd = dict(env)
        cmd, args = ps.command_and_args(c, envd)
        res = ps.linux_resources(c)
        try:
            mounts = self.w.volumes.container_mounts(self.pod, c, self.volumes)
        except ContainerConfigError as e:
            self.waiting[c["name"]] = ("CreateContainerConfigError", str(e))
            self.event(WARNING, "Failed", f"Error: {e}", c["name"])
            return
        if pod_ip and not any(m.container_path == "/etc/hosts" for m in mounts):
            mounts.append(pb.Mount(container_path="/etc/hosts", host_path=str(await self.write_hosts(pod_ip))))
        msg_file = await asyncio.to_thread(term.make_message_file, self.w.volumes.pod_dir(self.uid), c["name"])
        mounts.append(pb.Mount(container_path=c.get("terminationMessagePath") or term.DEFAULT_PATH,
                               host_path=str(msg_file)))
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=c["name"], attempt=attempt),
            annotations={term.ANNOTATION: str(msg_file)},
            image=pb.ImageSpec(image=c["image"]),
            command=cmd, args=args, working_dir=c.get("workingDir") or "",
            envs=[pb.KeyValue(key=k, value=v.encode()) for k, v in env],
            mounts=mounts,
            log_path=f"{c['name']}/{attempt}.log",
            labels={L_UID: self.uid, L_CONTAINER: c["name"], L_KIND: kind,
                    L_NAME: self.pod["metadata"]["name"], L_NS: self.pod["metadata"]["namespace"]},
            stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
            linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(**res),
                                          security_context=security_context.container_security_context(self.pod, c)),
        )
        if target_id:  # an ephemeral container sharing its target's process namespace
            cfg.linux.security_context.namespace_options.CopyFrom(ephemeral.target_namespaces(self.pod, target_id))
        observe(self.w, "container_started", kind)
        try:
            cid = await self.w.cri.create_container(sid, cfg, sconfig)
        except CRIError as e:
            observe(self.w, "container_start_failed", kind, e.code)
            self.waiting[c["name"]] = ("CreateContainerError", str(e))
            self.event(WARNING, "Failed", f"Error: {e}", c["name"])
            return
        self.event(NORMAL, "Created", f"Created container: {c['name']}", c["name"])
        try:
            await self.w.cri.start_container(cid)
        except CRIError as e:
            observe(self.w, "container_start_failed", kind, e.code)
            self.waiting[c["name"]] = ("RunContainerError", str(e))
            self.event(WARNING, "Failed", f"Error: {e}", c["name"])
            return
        self.event(NORMAL, "Started", f"Started container {c['name']}", c["name"])
        self.waiting.pop(c["name"], None)
        post = (c.get("lifecycle") or {}).get("postStart")
        if post:
            err = await run_hook(post, c, cri=self.w.cri, cid=cid, pod_ip=pod_ip, netns=await self.sandbox_netns(sid))
            if err:
                # upstream kills the container; the restart policy decides what happens next
                log.warning("pod %s: FailedPostStartHook: %s", self.name, err)
                self.event(WARNING, "FailedPostStartHook", err, c["name"])
                await self.kill_container(c, cid, self.grace_period(c), "FailedPostStartHook", pod_ip=pod_ip)

    async def env_object(self, resource: str, name: str) -> Optional[Obj]:
        """A ConfigMap or Secret of the pod's namespace for its env (None: not found)."""
        return await self.w.volumes.objects.get(resource, self.pod["metadata"]["namespace"], name)

    async def write_hosts(self, pod_ip: str) -> Path:
        """pods/<uid>/etc-hosts, the Kubernetes-managed /etc/hosts of every container."""
        path = self.w.volumes.pod_dir(self.uid) / "etc-hosts"

        def write() -> None:
            if self.host_network:
                text = pod_dns.host_network_hosts_file(self.pod, Path(self.w.hosts_file).read_text())
            else:
                text = pod_dns.hosts_file(self.pod, [pod_ip], self.w.cluster_domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(".etc-hosts.tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, path)
        await asyncio.to_thread(write)
        return path

    async def maybe_restart(self, sid: str, sconfig, c: Obj, cur, kind: str, pod_ip: str) -> None:
        loop = time.monotonic()
        delay, not_before = self.backoff.get(c["name"], (0.0, 0.0))
        if loop < not_before:
            meta = self.pod["metadata"]
            self.event(WARNING, "BackOff", f"Back-off restarting failed container {c['name']} in pod "
                                           f"{meta['name']}_{meta['namespace']}({self.uid})", c["name"])
            self.waiting[c["name"]] = ("CrashLoopBackOff",
                                       f"back-off {ps.go_duration(delay)} restarting failed container={c['name']} "
                                       f"pod={meta['name']}_{meta['namespace']}({self.uid})")
            asyncio.get_running_loop().call_later(not_before - loop + 0.05, self.wake.set)
            return
        delay = BACKOFF_INITIAL if delay == 0 else min(BACKOFF_MAX, delay * 2)
        self.backoff[c["name"]] = (delay, loop + delay)
        # keep only the latest exited instance (for lastState)
        for old in await self.w.cri.list_containers(labels={L_UID: self.uid, L_CONTAINER: c["name"]}):
            if old.id != cur.id and old.state == pb.CONTAINER_EXITED:
                try:
                    await self.w.cri.remove_container(old.id)
                except CRIError:
                    continue
                # its termination message file goes with it (a crash loop must not pile them up)
                msg_file = old.annotations.get(term.ANNOTATION)
                if msg_file:
                    await asyncio.to_thread(term.remove_message_file, msg_file)
        await self.start_container(sid, sconfig, c, cur.metadata.attempt + 1, kind, pod_ip)

    # ------------------------------------------------------------ status
    def _terminated(self, spec_c: Obj, st, cid: str) -> Obj:
        term = {"exitCode": st.exit_code,
                "reason": st.reason if st.reason == "OOMKilled" else ("Completed" if st.exit_code == 0 else "Error"),
                "startedAt": ps.rfc3339_from_ns(st.started_at), "finishedAt": ps.rfc3339_from_ns(st.finished_at),
                "containerID": f"containerd://{cid}"}
        msg = self.termination_message(spec_c, st, cid)
        if msg:
            term["message"] = msg
        return term

    def termination_message(self, spec_c: Obj, st, cid: str) -> str:
        """The container's termination message file, its log tail (FallbackToLogsOnError)
        or the runtime's message."""
        return term.message_for(spec_c, st.exit_code, st.annotations.get(term.ANNOTATION), st.log_path, st.message)

    async def previous_terminated(self, spec_c: Obj, cur) -> Optional[Obj]:
        """lastState: the newest earlier instance of this container, if it still exists."""
        if cur.metadata.attempt == 0:
            return None
        older = [c for c in await self.w.cri.list_containers(labels={L_UID: self.uid, L_CONTAINER: spec_c["name"]})
                 if c.metadata.attempt < cur.metadata.attempt and c.state == pb.CONTAINER_EXITED]
        if not older:
            return None
        prev = max(older, key=lambda c: c.metadata.attempt)
        try:
            st = (await self.w.cri.container_status(prev.id)).status
        except CRIError:
            return None
        return self._terminated(spec_c, st, prev.id)

    async def container_status(self, spec_c: Obj, cur, kind: str = "app") -> Obj:
        name = spec_c["name"]
        out: Obj = {"name": name, "image": spec_c.get("image", ""), "imageID": "", "restartCount": 0,
                    "ready": False, "started": False, "state": {}}
        if cur is None:
            reason, msg = self.waiting.get(name, ("ContainerCreating", ""))
            out["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
            out["lastState"] = {}
            return out
        st = (await self.w.cri.container_status(cur.id)).status
        out["containerID"] = f"containerd://{cur.id}"
        out["imageID"] = st.image_ref
        out["restartCount"] = cur.metadata.attempt
        if st.state == pb.CONTAINER_RUNNING:
            out["state"] = {"running": {"startedAt": ps.rfc3339_from_ns(st.started_at)}}
            if kind == "app" or is_sidecar(spec_c):
                out["started"] = self.probes.started(name, cur.id)
                out["ready"] = self.probes.ready(name, cur.id)
            else:
                out["started"] = True
            prev = await self.previous_terminated(spec_c, cur)
            if prev:
                out["lastState"] = {"terminated": prev}
        elif st.state == pb.CONTAINER_EXITED:
            term = self._terminated(spec_c, st, cur.id)
            if name in self.waiting and self.waiting[name][0] in ("CrashLoopBackOff", *image_pull.WAITING_REASONS):
                # a restart that is held back, or whose image cannot be had
                reason, msg = self.waiting[name]
                out["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
                out["lastState"] = {"terminated": term}
            else:
                out["state"] = {"terminated": term}
                prev = await self.previous_terminated(spec_c, cur)
                if prev:
                    out["lastState"] = {"terminated": prev}
        else:
            out["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if "lastState" not in out:
            out["lastState"] = {}
        return out

    async def reject(self, reason: str, message: str) -> None:
        """A pod the kubelet did not admit: Failed before anything ran (upstream rejectPod)."""
        message = f"Pod was rejected: {message}"
        status = {"phase": "Failed", "reason": reason, "message": message,
                  "qosClass": (self.pod.get("status") or {}).get("qosClass") or qos_cgroups.qos_class(self.pod)}
        meta = self.pod["metadata"]
        try:
            await self.w.pods.patch(meta["name"], {"status": status}, "merge", meta["namespace"], "status")
        except NotFound:
            return
        self.last_status = status
        self.event(WARNING, reason, message)

    async def evicted(self, message: str, reason: str = "Evicted") -> None:
        """Eviction (or another end the kubelet decides, by `reason`): kill everything with
        the eviction grace period and report the pod Failed with that reason."""
        await self.kill(grace=self.eviction_grace, keep_sandbox_record=True)
        sandboxes = sorted(await self.w.cri.list_pod_sandbox(labels={L_UID: self.uid}), key=lambda s: s.created_at)
        sid = sandboxes[-1].id if sandboxes else ""
        containers = await self.w.cri.list_containers(labels={L_UID: self.uid})
        pod_ip = (self.pod.get("status") or {}).get("podIP") or ""
        init_done = not (self.pod["spec"].get("initContainers")) or self.initialized
        await self.write_status(sid, pod_ip, self.latest(containers, sid), False, init_done, final=True,
                                terminal=(reason, message), disruption_condition=self.eviction_condition)

    async def write_status(self, sid: str, pod_ip: str, latest: dict, init_failed: bool, init_done: bool,
                           final: bool = False, terminal: Optional[tuple[str, str]] = None,
                           disruption_condition: bool = True) -> None:
        spec = self.pod["spec"]
        inits = [await self.container_status(c, latest.get(c["name"]), "init") for c in spec.get("initContainers") or []]
        apps = [await self.container_status(c, latest.get(c["name"]), "app") for c in spec.get("containers") or []]
        init_specs = spec.get("initContainers") or []
        sidecars = [s for s, c in zip(inits, init_specs) if is_sidecar(c)]
        regular = [s for s, c in zip(inits, init_specs) if not is_sidecar(c)]
        for s in regular:
            s["ready"] = "terminated" in s["state"] and s["state"]["terminated"]["exitCode"] == 0
        phase = "Failed" if terminal else ps.pod_phase(self.pod, regular, apps, init_failed=init_failed)
        status: Obj = {
            "phase": phase,
            "conditions": ps.pod_conditions(self.pod, phase, sandbox_ready=bool(sid), init_done=init_done,
                                            statuses=apps, sidecars=sidecars),
            "hostIP": self.w.host_ip, "hostIPs": [{"ip": self.w.host_ip}],
            "podIP": pod_ip or None, "podIPs": [{"ip": pod_ip}] if pod_ip else None,
            "startTime": (self.pod.get("status") or {}).get("startTime") or self.start_time or ps.now(),
            "containerStatuses": apps,
            "qosClass": (self.pod.get("status") or {}).get("qosClass") or qos_cgroups.qos_class(self.pod),
        }
        if inits:
            status["initContainerStatuses"] = inits
        if ephemeral.specs(self.pod):
            status["ephemeralContainerStatuses"] = await ephemeral.statuses(self, latest)
        if terminal:
            # the kubelet ended the pod: reason and message on the pod, and the
            # DisruptionTarget condition upstream adds for a kubelet-initiated termination
            status["reason"], status["message"] = terminal
            if disruption_condition:
                status["conditions"].append({"type": "DisruptionTarget", "status": "True",
                                             "reason": "TerminationByKubelet", "message": terminal[1],
                                             "lastProbeTime": None, "lastTransitionTime": ps.now()})
        meta = self.pod["metadata"]
        if status == self.last_status and (meta.get("resourceVersion") == self.written_over_rv or
                                           not self.status_drifted(self.pod)):
            # unchanged, and the API still shows it (as upstream, compare with the API's
            # status, not only our last write); before our write's echo arrives the
            # informer's pod is older than the write and proves nothing
            return
        try:
            resp = await self.w.pods.patch(meta["name"], {"status": status}, "merge", meta["namespace"], "status")
        except NotFound:
            return
        self.last_status = status
        if phase == "Running" and not self.seen_running:
            self.seen_running = True
            observe(self.w, "pod_running", time.monotonic() - self.first_seen)
        self.stored_status = (resp.get("status") if isinstance(resp, dict) else None) or status
        self.written_over_rv = meta.get("resourceVersion")
        if phase in ("Succeeded", "Failed") and not final:
            await self.kill(grace=self.grace_period(), keep_sandbox_record=True)  # sidecars still run
            # the final status shows the sidecars stopped too
            containers = await self.w.cri.list_containers(labels={L_UID: self.uid})
            await self.write_status(sid, pod_ip, self.latest(containers, sid), init_failed, init_done, final=True)

    # ------------------------------------------------------------ termination
    async def kill(self, grace: int, keep_sandbox_record: bool = False) -> None:
        cri = self.w.cri
        await self.probes.stop()
        containers = await cri.list_containers(labels={L_UID: self.uid})
        running = [c for c in containers if c.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_CREATED)]
        spec = self.pod.get("spec") or {}
        by_name = {c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
        side_order = [c["name"] for c in spec.get("initContainers") or [] if is_sidecar(c)]

        def spec_of(ctr) -> Obj:
            return by_name.get(ctr.labels.get(L_CONTAINER, ""), {"name": ctr.metadata.name})
        t0 = time.monotonic()
        # regular containers first, together; then sidecars one by one in reverse start order
        await asyncio.gather(*(self.kill_container(spec_of(c), c.id, grace, "Killing", sid=c.pod_sandbox_id)
                               for c in running if spec_of(c)["name"] not in side_order), return_exceptions=True)
        for name in reversed(side_order):
            left = max(0, grace - int(time.monotonic() - t0)) if grace else 0
            for c in running:
                if spec_of(c)["name"] == name:
                    await self.kill_container(spec_of(c), c.id, left, "Killing", sid=c.pod_sandbox_id)
        for s in await cri.list_pod_sandbox(labels={L_UID: self.uid}):
            try:
                await cri.stop_pod_sandbox(s.id)
                if not keep_sandbox_record:
                    await cri.remove_pod_sandbox(s.id)
            except CRIError as e:
                log.warning("removing sandbox %s of %s: %s", s.id[:12], self.name, e)
        if not keep_sandbox_record:
            await asyncio.to_thread(cleanup.remove_cgroup, self.w.cgroup_parent(self.uid, self.pod).lstrip("/"))
            await self.w.update_qos_cgroups(without=self.uid)
            await self.w.volumes.teardown(self.uid)
        else:
            await self.w.volumes.unmount(self.uid)  # a terminated pod's volumes are released


_VOLATILE_META = ("resourceVersion", "managedFields")


def _status_only_change(old: Obj, new: Obj) -> bool:
    """Whether two versions of a pod differ only in status (and bookkeeping metadata)."""
    def strip(p: Obj) -> Obj:
        out = {k: v for k, v in p.items() if k != "status"}
        out["metadata"] = {k: v for k, v in (p.get("metadata") or {}).items() if k not in _VOLATILE_META}
        return out
    return strip(old) == strip(new)


class PodWorkers:
    def __init__(self, client: Client, cri, *, node_name: str, host_ip: str, log_root: Path,
                 cgroup_root: str = "kubepods", resync: float = 10.0, volumes=None,
                 cluster_dns: Sequence[str] = (), cluster_domain: str = "cluster.local",
                 resolv_conf: str = "/etc/resolv.conf", events: Optional[EventRecorder] = None,
                 image_pull_backoff: float = image_pull.BACKOFF_INITIAL):
        self.client = client
        self.cri = cri
        # the node's image manager: pull secrets, pull back-off, one pull at a time
        self.images = image_pull.ImagePuller(cri, backoff_initial=image_pull_backoff)
        self.node_name = node_name
        self.host_ip = host_ip
        self.log_root = Path(log_root)
        self.cgroup_root = cgroup_root.strip("/")
        self.resync = resync
        self.pods = client.resource("", "v1", "pods", namespaced=True)
        self.workers: dict[str, PodWorker] = {}
        self.cluster_dns = list(cluster_dns)
        self.events = events
        self.cluster_domain = cluster_domain
        self.resolv_conf = resolv_conf
        self.hosts_file = "/etc/hosts"  # what host-network pods see, with their hostAliases
        self.host_dns = pod_dns.DNS()
        # pod directories (volumes) under <log_root>/<uid> unless the kubelet names a place
        self.volumes = volumes if volumes is not None else VolumeManager(client, self.log_root)
        # admission of pods this kubelet has not started yet: None to admit, or (reason, message)
        self.admit: Optional[Callable[[Obj], Optional[tuple[str, str]]]] = None
        # the Services behind the containers' service environment variables (kubelet sets the informer)
        self.service_env = ServiceEnv(None)
        # the kubelet's metrics (kubelet.server.metrics_endpoint.KubeletMetrics), when served
        self.observer: Any = None

    async def load_host_dns(self) -> None:
        """The node's resolver settings (for dnsPolicy Default and the host search list)."""
        def read() -> str:
            try:
                with open(self.resolv_conf) as f:
                    return f.read()
            except OSError:
                return ""
        if self.resolv_conf:
            self.host_dns = pod_dns.parse_resolv_conf(await asyncio.to_thread(read))

    def cgroup_parent(self, uid: str, pod: Obj) -> str:
        """The pod's cgroup under the kubepods root, in its QoS class's branch."""
        return qos_cgroups.pod_cgroup(self.cgroup_root, uid, qos_cgroups.qos_class(pod))

    def update(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is None:
            w = self.workers[uid] = PodWorker(self, uid, pod)
            st = pod.get("status") or {}
            if self.admit is not None and not st.get("containerStatuses") and \
                    st.get("phase", "Pending") == "Pending" and not pod["metadata"].get("deletionTimestamp"):
                w.rejection = self.admit(pod)
            w.task = asyncio.ensure_future(w.run())
        else:
            w.update(pod)

    def removed(self, pod: Obj, grace: int = 0) -> None:
        """The pod object is gone from the API (or a static pod from its manifest
        directory): stop, within `grace` seconds, and remove whatever still runs."""
        uid = pod["metadata"]["uid"]
        w = self.workers.get(uid)
        if w is not None and not w.done:
            w.pod = dict(pod, metadata=dict(pod["metadata"], deletionTimestamp=ps.now(),
                                            deletionGracePeriodSeconds=grace))
            w.wake.set()

    def status_target_changed(self, uid: str) -> None:
        """The API object the pod's status goes to is new (a static pod's mirror pod was
        (re)created): write the status again even if it did not change."""
        w = self.workers.get(uid)
        if w is not None:
            w.last_status = None
            w.wake.set()

    async def update_qos_cgroups(self, without: str = "") -> None:
        """Burstable's cpu shares follow the cpu requests of the Burstable pods here."""
        milli = sum(qos_cgroups.pod_cpu_request_milli(w.pod) for uid, w in self.workers.items()
                    if uid != without and not w.done and qos_cgroups.qos_class(w.pod) == qos_cgroups.BURSTABLE
                    and (w.last_status or {}).get("phase") not in ("Succeeded", "Failed"))
        await asyncio.to_thread(qos_cgroups.update_qos_cgroups, self.cgroup_root, milli)

    def evict(self, uid: str, message: str, grace: int = 0, disruption_condition: bool = True) -> bool:
        """Have the pod's worker evict it with `grace` seconds (see PodWorker.evicted),
        adding the DisruptionTarget condition if asked; False when the pod has no running
        worker or is already ending."""
        w = self.workers.get(uid)
        if w is None or w.done or w.eviction is not None or \
                (w.last_status or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        w.eviction, w.eviction_grace, w.eviction_condition = message, grace, disruption_condition
        w.wake.set()
        return True

    def wake(self, uid: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            w.wake.set()

    def forget(self, uid: str) -> None:
        self.workers.pop(uid, None)

    async def kill_orphans(self, known: set[str], grace: int = 1) -> list[str]:
        """Kill and remove the runtime's pods that are neither in `known` nor have a worker:
        pods deleted from the API while the kubelet was down (upstream HandlePodCleanups,
        which kills such runtime pods with a 1 s grace period, their spec being gone).
        Returns their uids."""
        orphans: dict[str, Any] = {}
        try:
            sandboxes = await self.cri.list_pod_sandbox()
        except CRIError as e:  # the periodic sync cannot do this: say so, and carry on
            log.warning("looking for pods no longer bound here: %s", e)
            return []
        for s in sandboxes:
            uid = s.labels.get(L_UID, "")
            if uid and uid not in known and uid not in self.workers:
                orphans.setdefault(uid, s)
        for uid, s in orphans.items():
            pod = {"metadata": {"uid": uid, "name": s.labels.get(L_NAME) or s.metadata.name,
                                "namespace": s.labels.get(L_NS) or s.metadata.namespace}, "spec": {}}
            log.info("killing pod %s/%s (%s): no longer bound to this node", pod["metadata"]["namespace"],
                     pod["metadata"]["name"], uid)
            try:
                await PodWorker(self, uid, pod).kill(grace=grace)
            except CRIError as e:
                log.warning("killing orphaned pod %s: %s", uid, e)
                continue
            # its QoS class went with its spec: remove the pod cgroup wherever it is
            for qos in (qos_cgroups.GUARANTEED, qos_cgroups.BURSTABLE):
                await asyncio.to_thread(cleanup.remove_cgroup,
                                        qos_cgroups.pod_cgroup(self.cgroup_root, uid, qos).lstrip("/"))
        return list(orphans)

    async def stop(self) -> None:
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(w.probes.stop() for w in self.workers.values()), return_exceptions=True)
        self.workers.clear()
