"""VolumeZone: a pod whose bound PersistentVolumes carry zone/region labels goes only to
nodes in those zones/regions (upstream pkg/scheduler/framework/plugins/volumezone).

Only bound claims count (an unbound WaitForFirstConsumer claim is VolumeBinding's
business).  A PV label value may list several zones joined by "__".  A node with no
topology label at all fits (single-zone clusters); otherwise every PV label must find
its value on the node, the beta failure-domain keys falling back to the GA keys."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from kybernetes.api.storagehelpers import WAIT_FOR_FIRST_CONSUMER, claim_class, pod_claims
from kybernetes.scheduler.framework import Code, Status

NAME = "VolumeZone"
ERR_REASON_CONFLICT = "node(s) had no available volume zone"

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
TOPOLOGY_LABELS = (BETA_ZONE, BETA_REGION, ZONE, REGION)
_TO_GA = {BETA_ZONE: ZONE, BETA_REGION: REGION}


def label_zones(value: str) -> Optional[frozenset[str]]:
    """LabelZonesToSet: "a__b" -> {a, b}; None when a part is empty (the label is ignored)."""
    parts = value.split("__")
    if any(not p.strip() for p in parts):
        return None
    return frozenset(p.strip() for p in parts)


def pv_topologies(pv: Mapping[str, Any]) -> list[tuple[str, frozenset[str]]]:
    labels = (pv.get("metadata") or {}).get("labels") or {}
    out = []
    for key in TOPOLOGY_LABELS:
        if key in labels:
            zones = label_zones(labels[key])
            if zones is not None:
                out.append((key, zones))
    return out


class VolumeZone:
    name = NAME

    def pre_filter(self, state, pod):
        # upstream looks at persistentVolumeClaim volumes only, not generic ephemeral ones
        names = [name for name, ephemeral in pod_claims(pod) if not ephemeral]
        if not names:
            return Status(Code.SKIP)
        vc = getattr(state.snapshot, "volumes", None)
        ns = (pod.get("metadata") or {}).get("namespace") or ""
        topologies: list[tuple[str, frozenset[str]]] = []
        for name in names:
            if not name:
                return Status.unresolvable("PersistentVolumeClaim had no name")
            pvc = vc.pvc(ns, name) if vc is not None else None
            if pvc is None:
                return Status.unresolvable(f'persistentvolumeclaim "{name}" not found')
            pv_name = (pvc.get("spec") or {}).get("volumeName")
            if not pv_name:
                cls = claim_class(pvc)
                if not cls:
                    return Status.unresolvable("PersistentVolumeClaim had no pv name and storageClass name")
                sc = vc.storage_class(cls)
                if sc is None:
                    return Status.unresolvable(f'storageclass.storage.k8s.io "{cls}" not found')
                mode = sc.get("volumeBindingMode")
                if not mode:
                    return Status.unresolvable(f'VolumeBindingMode not set for StorageClass "{cls}"')
                if mode == WAIT_FOR_FIRST_CONSUMER:
                    continue
                return Status.unresolvable("PersistentVolume had no name")
            pv = vc.pv(pv_name)
            if pv is None:
                return Status.unresolvable(f'persistentvolume "{pv_name}" not found')
            topologies.extend(pv_topologies(pv))
        if not topologies:
            return Status(Code.SKIP)
        state[NAME] = topologies
        return None

    def filter(self, state, pod, ni):
        topologies = state.get(NAME)
        if not topologies:
            return None
        labels = ni.labels
        if not any(k in labels for k in TOPOLOGY_LABELS):
            return None  # a node without zones: nothing to conflict with
        for key, zones in topologies:
            v = labels.get(key)
            if v is None:
                v = labels.get(_TO_GA.get(key, key))
            if v is None or v not in zones:
                return Status.unresolvable(ERR_REASON_CONFLICT)
        return None
