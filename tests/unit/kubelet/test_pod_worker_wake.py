"""A pod worker is not woken by its own status write coming back through the watch, but
is by spec/metadata changes and by someone else changing the phase."""

from __future__ import annotations

import copy

from kybernetes.kubelet.pod_workers import PodWorker, _status_only_change

POD = {"metadata": {"name": "p", "namespace": "d", "uid": "u", "resourceVersion": "1", "labels": {"a": "1"}},
       "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Pending"}}


def test_status_only_change():
    new = copy.deepcopy(POD)
    new["metadata"]["resourceVersion"] = "2"
    new["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    new["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    assert _status_only_change(POD, new)
    lab = copy.deepcopy(new)
    lab["metadata"]["labels"]["a"] = "2"
    assert not _status_only_change(POD, lab)
    dele = copy.deepcopy(new)
    dele["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not _status_only_change(POD, dele)
    spec = copy.deepcopy(new)
    spec["spec"]["activeDeadlineSeconds"] = 5
    assert not _status_only_change(POD, spec)


class _Workers:
    cri = None


async def test_update_wakes_only_when_there_is_something_to_drive():
    w = PodWorker(_Workers(), "u", copy.deepcopy(POD))
    w.wake.clear()
    w.last_status = {"phase": "Running"}
    echo = copy.deepcopy(POD)
    echo["metadata"]["resourceVersion"] = "2"
    echo["status"] = {"phase": "Running"}
    w.update(echo)
    assert not w.wake.is_set() and w.pod is echo  # the newest object is kept all the same
    failed = copy.deepcopy(echo)
    failed["status"] = {"phase": "Failed"}
    w.update(failed)
    assert w.wake.is_set()
    w.wake.clear()
    relabel = copy.deepcopy(failed)
    relabel["metadata"]["labels"] = {"a": "2"}
    w.last_status = {"phase": "Failed"}
    w.update(relabel)
    assert w.wake.is_set()
