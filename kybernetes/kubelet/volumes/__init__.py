"""Pod volumes: one module per volume type, an atomic writer for API data volumes, the
service account token manager and the per-pod volume manager."""

from kybernetes.kubelet.volumes.base import MountedVolume, VolumeError
from kybernetes.kubelet.volumes.manager import ContainerConfigError, VolumeManager

__all__ = ["ContainerConfigError", "MountedVolume", "VolumeError", "VolumeManager"]
