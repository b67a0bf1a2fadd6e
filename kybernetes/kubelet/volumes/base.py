"""What every volume plugin shares: the per-pod context it reads and the error it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

Obj = dict[str, Any]


class VolumeError(Exception):
    """A volume could not be set up; the message is upstream's MountVolume.SetUp wording."""


@dataclass
class VolumeContext:
    """Everything a plugin may consult while setting up one pod's volume."""
    client: Any                      # kybernetes.client.Client
    pod: Obj
    pod_dir: Path                    # <data>/pods/<uid>
    tokens: Any = None               # TokenManager (projected serviceAccountToken)
    node_allocatable: Callable[[], dict[str, str]] = field(default=lambda: {})
    cache: dict = field(default_factory=dict)  # per-sync cache of fetched objects

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    def volume_dir(self, plugin: str, name: str) -> Path:
        """Upstream's layout: pods/<uid>/volumes/kubernetes.io~<plugin>/<name>."""
        return self.pod_dir / "volumes" / f"kubernetes.io~{plugin}" / name

    async def get(self, resource: str, name: str) -> Optional[Obj]:
        """A ConfigMap or Secret of the pod's namespace, None when absent (cached per sync)."""
        from kybernetes.client import NotFound
        key = (resource, name)
        if key not in self.cache:
            h = self.client.resource("", "v1", resource, namespaced=True)
            try:
                self.cache[key] = await h.get(name, self.namespace)
            except NotFound:
                self.cache[key] = None
        return self.cache[key]


@dataclass
class MountedVolume:
    path: Path
    read_only: bool = False          # the plugin insists on a read-only mount (API data volumes)
