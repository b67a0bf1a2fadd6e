"""VolumeRestrictions: volumes that two pods may not share (upstream
pkg/scheduler/framework/plugins/volumerestrictions).

- Disk conflicts on a node: the same GCE PD or iSCSI IQN unless every user mounts it
  read-only, the same AWS EBS volume ever, the same Ceph RBD image (a shared monitor, same
  pool and image) unless all read-only.
- ReadWriteOncePod claims: no other pod in the cluster may use one already.  PreFilter
  counts the pods (assigned or assumed) that use the pod's RWOP claims; preemption's
  what-if runs adjust the count through add_pod/remove_pod."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from kybernetes.api.storagehelpers import pod_claims
from kybernetes.scheduler.framework import Code, Status

NAME = "VolumeRestrictions"
ERR_REASON_DISK_CONFLICT = "node(s) had no available disk"
ERR_REASON_RWOP_CONFLICT = "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode"

_CHECKED = ("gcePersistentDisk", "awsElasticBlockStore", "rbd", "iscsi")


def _volumes(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return (pod.get("spec") or {}).get("volumes") or []


def needs_check(volume: Mapping[str, Any]) -> bool:
    return any(volume.get(k) is not None for k in _CHECKED)


def volumes_conflict(volume: Mapping[str, Any], other_pod: Mapping[str, Any]) -> bool:
    """isVolumeConflict: does `volume` clash with any volume of `other_pod`?"""
    for ev in _volumes(other_pod):
        d, e = volume.get("gcePersistentDisk"), ev.get("gcePersistentDisk")
        if d is not None and e is not None:
            if d.get("pdName") == e.get("pdName") and not (d.get("readOnly") and e.get("readOnly")):
                return True
        d, e = volume.get("awsElasticBlockStore"), ev.get("awsElasticBlockStore")
        if d is not None and e is not None and d.get("volumeID") == e.get("volumeID"):
            return True
        d, e = volume.get("iscsi"), ev.get("iscsi")
        if d is not None and e is not None:
            if d.get("iqn") == e.get("iqn") and not (d.get("readOnly") and e.get("readOnly")):
                return True
        d, e = volume.get("rbd"), ev.get("rbd")
        if d is not None and e is not None:
            shared_monitor = bool(set(d.get("monitors") or ()) & set(e.get("monitors") or ()))
            # the API defaults pool to "rbd"; compare the defaulted values
            same = ((d.get("pool") or "rbd") == (e.get("pool") or "rbd") and d.get("image") == e.get("image"))
            if shared_monitor and same and not (d.get("readOnly") and e.get("readOnly")):
                return True
    return False


def _claims(pod: Mapping[str, Any]) -> Iterable[str]:
    # as upstream, only persistentVolumeClaim volumes take part (not generic ephemeral ones)
    return (name for name, ephemeral in pod_claims(pod) if not ephemeral)


class _State:
    __slots__ = ("namespace", "rwop", "conflicts")

    def __init__(self, namespace: str, rwop: set[str], conflicts: int) -> None:
        self.namespace, self.rwop, self.conflicts = namespace, rwop, conflicts

    def clone(self) -> "_State":
        return _State(self.namespace, self.rwop, self.conflicts)

    def count(self, pod: Mapping[str, Any]) -> int:
        if (pod.get("metadata") or {}).get("namespace") != self.namespace:
            return 0
        return sum(1 for c in _claims(pod) if c in self.rwop)


class VolumeRestrictions:
    name = NAME

    def pre_filter(self, state, pod):
        volumes = _volumes(pod)
        if not volumes:
            return Status(Code.SKIP)
        check = any(needs_check(v) for v in volumes)
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        rwop: set[str] = set()
        vc = getattr(state.snapshot, "volumes", None)
        for claim in _claims(pod):
            pvc = vc.pvc(ns, claim) if vc is not None else None
            if pvc is None:
                return Status.unresolvable(f'persistentvolumeclaim "{claim}" not found')
            if "ReadWriteOncePod" in ((pvc.get("spec") or {}).get("accessModes") or ()):
                rwop.add(claim)
        conflicts = 0
        if rwop:
            in_use: set[str] = set()
            for ni in state.snapshot.node_infos() if hasattr(state.snapshot, "node_infos") else ():
                for pi in ni.pods.values():
                    if pi.namespace == ns:
                        in_use.update(c for c in _claims(pi.pod) if c in rwop)
            conflicts = len(in_use)  # at most one pod can be using each RWOP claim
        if not check and conflicts == 0:
            return Status(Code.SKIP)
        state[NAME] = _State(ns, rwop, conflicts)
        return None

    def add_pod(self, state, pod, other, node_info):
        s = state.get(NAME)
        if s is not None:
            s.conflicts += s.count(other.pod)

    def remove_pod(self, state, pod, other, node_info):
        s = state.get(NAME)
        if s is not None:
            s.conflicts -= s.count(other.pod)

    def filter(self, state, pod, ni):
        for v in _volumes(pod):
            if not needs_check(v):
                continue
            for pi in ni.pods.values():
                if volumes_conflict(v, pi.pod):
                    return Status.unschedulable(ERR_REASON_DISK_CONFLICT)
        s = state.get(NAME)
        if s is not None and s.conflicts > 0:
            return Status.unschedulable(ERR_REASON_RWOP_CONFLICT)
        return None
