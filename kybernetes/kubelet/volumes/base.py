"""What every volume plugin shares: the per-pod context it reads and the error it raises."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from kybernetes.kubelet.volumes.ownership import pod_fs_group

Obj = dict[str, Any]


class VolumeError(Exception):
    """A volume could not be set up; the message is upstream's MountVolume.SetUp wording."""


class MountError(VolumeError):
    """A failure already worded in full as upstream's operation executor does it
    (`MountVolume.NewMounter initialization failed for volume "pv-1" : ...`), for volumes
    whose upstream name is not the pod's volume name (a PersistentVolume's)."""

    def __init__(self, operation: str, volume: str, why: str):
        super().__init__(f'{operation} failed for volume "{volume}" : {why}')


@dataclass
class VolumeContext:
    """Everything a plugin may consult while setting up one pod's volume."""
    client: Any                      # kybernetes.client.Client
    pod: Obj
    pod_dir: Path                    # <data>/pods/<uid>
    tokens: Any = None               # TokenManager (projected serviceAccountToken)
    node_allocatable: Callable[[], dict[str, str]] = field(default=lambda: {})
    cache: dict = field(default_factory=dict)  # per-sync cache of fetched objects
    objects: Any = None              # ObjectCache shared by all pods (None: read directly)

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def fs_group(self) -> Optional[int]:
        """The pod's securityContext.fsGroup (None when unset)."""
        return pod_fs_group(self.pod)[0]

    @property
    def fs_group_policy(self) -> str:
        return pod_fs_group(self.pod)[1]

    def volume_dir(self, plugin: str, name: str) -> Path:
        """Upstream's layout: pods/<uid>/volumes/kubernetes.io~<plugin>/<name>."""
        return self.pod_dir / "volumes" / f"kubernetes.io~{plugin}" / name

    async def get(self, resource: str, name: str) -> Optional[Obj]:
        """A ConfigMap or Secret of the pod's namespace, None when absent (cached per sync)."""
        key = (resource, name)
        if key not in self.cache:
            if self.objects is not None:
                self.cache[key] = await self.objects.get(resource, self.namespace, name)
            else:
                self.cache[key] = await fetch(self.client, resource, self.namespace, name)
        return self.cache[key]


async def fetch(client: Any, resource: str, namespace: str, name: str) -> Optional[Obj]:
    from kybernetes.client import NotFound
    try:
        return await client.resource("", "v1", resource, namespaced=True).get(name, namespace)
    except NotFound:
        return None


class ObjectCache:
    """ConfigMaps and Secrets read for volumes, shared by every pod of the node for `ttl`
    seconds (concurrent reads of one object share one request), so a burst of pods
    starting with the same kube-root-ca.crt costs one GET, as upstream's caching manager."""

    def __init__(self, client: Any, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self.entries: dict[tuple[str, str, str], tuple[float, asyncio.Future]] = {}
        self.fetches = 0

    async def get(self, resource: str, namespace: str, name: str) -> Optional[Obj]:
        key = (resource, namespace, name)
        now = self.clock()
        hit = self.entries.get(key)
        if hit is not None and (not hit[1].done() or now < hit[0]):
            return await asyncio.shield(hit[1])
        fut: asyncio.Future = asyncio.ensure_future(fetch(self.client, resource, namespace, name))
        self.fetches += 1
        self.entries[key] = (now + self.ttl, fut)
        try:
            return await asyncio.shield(fut)
        except Exception:
            self.entries.pop(key, None)  # never cache a failed read
            raise
        finally:
            if len(self.entries) > 4096:
                self.entries = {k: v for k, v in self.entries.items() if not v[1].done() or v[0] > now}


@dataclass
class MountedVolume:
    path: Path
    read_only: bool = False          # the plugin insists on a read-only mount (API data volumes)
