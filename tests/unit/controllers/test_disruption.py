"""Disruption controller and eviction helpers: pure status arithmetic."""

from __future__ import annotations

import time

import pytest

from kybernetes.apiserver import errors
from kybernetes.apiserver.eviction import can_ignore_pdb, check_and_decrement, pdbs_for_pod
from kybernetes.controllers.disruption import (
    DELETION_TIMEOUT, build_disrupted, count_healthy, desired_status, scaled_value, status_equal,
)
from kybernetes.controllers._pods import now_rfc3339


def pod(name, ready=True, terminating=False, phase="Running", labels=None):
    meta = {"name": name, "namespace": "ns", "labels": labels or {"app": "a"}}
    if terminating:
        meta["deletionTimestamp"] = now_rfc3339()
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_scaled_value_rounds_up_percents():
    assert scaled_value(2, 10) == 2
    assert scaled_value("50%", 3) == 2
    assert scaled_value("25%", 4) == 1
    assert scaled_value("0%", 4) == 0
    with pytest.raises(ValueError):
        scaled_value("abc", 4)


def test_count_healthy_skips_terminating_unready_and_recently_disrupted():
    now = time.time()
    pods = [pod("a"), pod("b", ready=False), pod("c", terminating=True), pod("d"), pod("e")]
    assert count_healthy(pods, {}, now) == 3
    assert count_healthy(pods, {"d": iso(now - 10)}, now) == 2
    assert count_healthy(pods, {"d": iso(now - DELETION_TIMEOUT - 10)}, now) == 3


def test_build_disrupted_prunes_gone_terminating_and_expired():
    now = time.time()
    pods = [pod("a"), pod("b", terminating=True), pod("c")]
    disrupted = {"a": iso(now - 5), "b": iso(now - 5), "gone": iso(now - 5), "c": iso(now - DELETION_TIMEOUT - 5)}
    out, recheck = build_disrupted(pods, disrupted, now)
    assert out == {"a": disrupted["a"]}
    assert recheck is not None and now < recheck <= now + DELETION_TIMEOUT


def test_desired_status_and_condition():
    now = time.time()
    pdb = {"metadata": {"name": "p", "generation": 3}, "spec": {"minAvailable": 2}, "status": {}}
    st, _ = desired_status(pdb, [pod("a"), pod("b"), pod("c")], 3, 2, now)
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"], st["disruptionsAllowed"],
            st["observedGeneration"]) == (3, 2, 3, 1, 3)
    cond = st["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"], cond["observedGeneration"]) == \
        ("DisruptionAllowed", "True", "SufficientPods", 3)
    st2, _ = desired_status(pdb, [pod("a")], 3, 2, now)
    assert st2["disruptionsAllowed"] == 0
    assert st2["conditions"][0]["reason"] == "InsufficientPods"
    # no expected pods: nothing allowed even when healthy exceeds desired
    st3, _ = desired_status(pdb, [pod("a")], 0, 0, now)
    assert st3["disruptionsAllowed"] == 0
    assert status_equal(st, dict(st)) and not status_equal(st, st2)


def test_check_and_decrement():
    pdb = {"metadata": {"name": "p", "generation": 1},
           "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "desiredHealthy": 2, "currentHealthy": 3}}
    out = check_and_decrement(pdb, "x", dry_run=False)
    assert out["status"]["disruptionsAllowed"] == 0 and "x" in out["status"]["disruptedPods"]
    assert out["status"]["conditions"][0]["reason"] == "InsufficientPods"
    with pytest.raises(errors.APIError) as e:
        check_and_decrement(out, "y", dry_run=False)
    assert e.value.code == 429 and e.value.details["causes"][0]["reason"] == "DisruptionBudget"
    stale = {"metadata": {"name": "p", "generation": 2}, "status": {"observedGeneration": 1, "disruptionsAllowed": 5}}
    with pytest.raises(errors.APIError) as e:
        check_and_decrement(stale, "y", dry_run=False)
    assert e.value.code == 429 and e.value.details["retryAfterSeconds"] == 10
    dry = {"metadata": {"name": "p"}, "status": {"disruptionsAllowed": 2}}
    assert "disruptedPods" not in check_and_decrement(dry, "z", dry_run=True)["status"]


def test_pdbs_for_pod_and_ignorable_pods():
    p = pod("a", labels={"app": "a", "t": "1"})
    pdbs = [{"metadata": {"name": "one"}, "spec": {"selector": {"matchLabels": {"app": "a"}}}},
            {"metadata": {"name": "other"}, "spec": {"selector": {"matchLabels": {"app": "b"}}}},
            {"metadata": {"name": "empty"}, "spec": {"selector": {}}},
            {"metadata": {"name": "none"}, "spec": {}}]
    assert [x["metadata"]["name"] for x in pdbs_for_pod(pdbs, p)] == ["one"]
    assert not can_ignore_pdb(pod("r"))
    assert can_ignore_pdb(pod("p", phase="Pending")) and can_ignore_pdb(pod("s", phase="Succeeded"))
    assert can_ignore_pdb(pod("f", phase="Failed")) and can_ignore_pdb(pod("t", terminating=True))
