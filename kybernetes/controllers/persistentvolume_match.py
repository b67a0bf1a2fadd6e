"""The PV binder's own matching (upstream pkg/controller/volume/persistentvolume index.go
and pv_controller.go): the closest-fitting volume for a claim by access-mode groups, and
why a volume a claim names does not fit it.

The rules other components share (classes, sizes, modes, FindMatchingVolume, binding,
the default class) are in kybernetes/api/storagehelpers.py; no I/O here either."""

from __future__ import annotations

from typing import Iterable, Optional

from kybernetes.api.storagehelpers import (
    ACCESS_MODES,
    Obj,
    access_modes_satisfied,
    claim_class,
    find_matching_volume,
    meta,
    requested_storage,
    spec,
    volume_capacity,
    volume_class,
    volume_mode_mismatch,
)

def access_modes_key(modes: Optional[Iterable[str]]) -> tuple[str, ...]:
    """A volume's access modes as upstream's index keys them: known modes, fixed order, once."""
    have = set(modes or ())
    return tuple(m for m in ACCESS_MODES if m in have)


def check_volume_satisfies_claim(volume: Obj, claim: Obj) -> Optional[str]:
    """checkVolumeSatisfyClaim: why a volume the claim asked for by name does not fit it
    (None when it fits)."""
    if meta(volume).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{meta(volume).get("name", "")}"'
    if volume_capacity(volume) < requested_storage(claim):
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_satisfied(claim, volume):
        return "incompatible accessMode"
    return None


def find_best_match_for_claim(claim: Obj, volumes: Iterable[Obj], *, delay_binding: bool = False) -> Optional[Obj]:
    """findBestMatchForClaim: try the volumes grouped by their access-mode sets that hold
    every mode the claim asks for, fewest modes first, so a claim gets the closest fit."""
    groups: dict[tuple[str, ...], list[Obj]] = {}
    for v in volumes:
        groups.setdefault(access_modes_key(spec(v).get("accessModes")), []).append(v)
    wanted = set(spec(claim).get("accessModes") or ())
    candidates = [k for k in groups if wanted <= set(k)]
    candidates.sort(key=len)  # stable: equal-size sets keep their first-seen order
    for modes in candidates:
        # a name order inside a group makes equal-size picks deterministic
        best = find_matching_volume(claim, sorted(groups[modes], key=lambda v: meta(v).get("name", "")),
                                    delay_binding=delay_binding)
        if best is not None:
            return best
    return None

