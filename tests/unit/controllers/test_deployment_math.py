"""Deployment controller arithmetic, without a server: hashing, fenceposts,
new-RS sizing, old-RS scale-down, proportional scaling, conditions."""

from __future__ import annotations

import pytest

from kybernetes.controllers import deployment as dc


def dep(replicas=10, surge="25%", unavail="25%", strategy="RollingUpdate", status=None):
    spec = {"replicas": replicas, "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavail}
    return {"metadata": {"name": "d", "generation": 1}, "spec": spec, "status": status or {}}


def rs(name, replicas, available=0, created="2020-01-01T00:00:00Z", max_replicas=None):
    ann = {} if max_replicas is None else {dc.MAX_REPLICAS: str(max_replicas)}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": ann},
            "spec": {"replicas": replicas}, "status": {"availableReplicas": available, "replicas": replicas}}


def test_safe_encode_and_fnv():
    assert dc.fnv32a(b"") == 0x811C9DC5
    assert dc.fnv32a(b"a") == 0xE40C292C  # FNV-1a test vector
    assert dc.safe_encode("0123") == "".join(dc.SAFE_ALPHABET[b % 27] for b in b"0123")
    h = dc.compute_hash({"spec": {"containers": [{"name": "c", "image": "x"}]}})
    assert h and set(h) <= set(dc.SAFE_ALPHABET)
    assert dc.compute_hash({"a": 1}) == dc.compute_hash({"a": 1})
    assert dc.compute_hash({"a": 1}, 1) != dc.compute_hash({"a": 1})
    assert dc.compute_hash({"a": 1}, 1) != dc.compute_hash({"a": 1}, 2)


def test_equal_ignore_hash():
    t = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}
    t2 = {"metadata": {"labels": {"app": "x", dc.HASH_LABEL: "abc"}}, "spec": {"containers": []}}
    assert dc.equal_ignore_hash(t, t2)
    assert not dc.equal_ignore_hash(t, {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": []}})


@pytest.mark.parametrize("surge,unavail,desired,expect", [
    ("25%", "25%", 10, (3, 2)),      # surge rounds up, unavailable rounds down
    ("25%", "25%", 1, (1, 0)),
    ("0%", "0%", 3, (0, 1)),         # never both zero
    (2, 0, 5, (2, 0)),
    ("50%", "50%", 5, (3, 2)),
])
def test_resolve_fenceposts(surge, unavail, desired, expect):
    assert dc.resolve_fenceposts(surge, unavail, desired) == expect


def test_max_unavailable_capped_and_recreate():
    assert dc.max_unavailable(dep(2, 0, 5)) == 2
    assert dc.max_unavailable(dep(3, strategy="Recreate")) == 0
    assert dc.max_surge(dep(3, strategy="Recreate")) == 0
    assert dc.max_unavailable(dep(0)) == 0


def test_new_rs_new_replicas():
    d = dep(10)  # surge 3
    new = rs("new", 0)
    assert dc.new_rs_new_replicas(d, [rs("old", 10), new], new) == 3
    new = rs("new", 3)
    assert dc.new_rs_new_replicas(d, [rs("old", 10), new], new) == 3  # at max total
    assert dc.new_rs_new_replicas(d, [rs("old", 2), new], new) == 10
    assert dc.new_rs_new_replicas(dep(4, strategy="Recreate"), [], rs("n", 0)) == 4


def test_old_scale_down_respects_availability():
    d = dep(10)  # minAvailable 8
    old = rs("old", 10, available=10)
    new = rs("new", 3, available=0)
    # all=13, maxScaledDown = 13 - 8 - 3 = 2; available 10 > 8 -> scale old by 2
    assert dc.old_scale_down_plan(d, [old, new], [old], new) == {"old": 8}
    # no pods ever become ready: nothing more to scale down
    old8 = rs("old", 8, available=8)
    assert dc.old_scale_down_plan(d, [old8, new], [old8], new) == {}


def test_old_scale_down_cleans_unhealthy_first():
    d = dep(10)
    a = rs("a", 5, available=0, created="2020-01-01T00:00:00Z")
    b = rs("b", 5, available=5, created="2020-01-02T00:00:00Z")
    new = rs("new", 3, available=3)
    # maxScaledDown = 13 - 8 - 0 = 5: the 5 unavailable replicas of a go
    assert dc.old_scale_down_plan(d, [a, b, new], [a, b], new) == {"a": 0}


def test_proportional_scaling():
    # rollout of 10 -> scaled to 15 mid-way; sizes grow in proportion (upstream docs example)
    d = dep(15, status={"replicas": 13})
    old = rs("old", 8, created="2020-01-01T00:00:00Z", max_replicas=13)
    new = rs("new", 5, created="2020-01-02T00:00:00Z", max_replicas=13)
    sizes = dc.proportional_sizes(d, [old, new])
    # allowed 15 + 4 = 19, add 6: old 8*19/13=11.7 -> 12 (+4), new 5*19/13=7.3 -> 7 (+2)
    assert sizes == {"old": 12, "new": 7}
    assert sum(sizes.values()) == 19
    down = dc.proportional_sizes(dep(5, status={"replicas": 19}),
                                 [rs("old", 12, max_replicas=19), rs("new", 7, created="2020-01-02T00:00:00Z", max_replicas=19)])
    assert sum(down.values()) == 5 + 2


def test_conditions_and_completion():
    d = dep(2)
    st = dc.calculate_status(d, [rs("new", 2, available=2)], rs("new", 2, available=2))
    assert dc.get_condition(st, "Available")["status"] == "True"
    assert st["unavailableReplicas"] == 0
    assert dc.deployment_complete(d, st)
    st2 = dc.calculate_status(d, [rs("new", 2, available=0)], rs("new", 2, available=0))
    assert dc.get_condition(st2, "Available")["status"] == "False"
    assert st2["unavailableReplicas"] == 2
    d["spec"]["progressDeadlineSeconds"] = 10
    d["status"] = {"conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                   "lastUpdateTime": "2020-01-01T00:00:00Z"}]}
    assert dc.deployment_timed_out(d, d["status"])
    d["status"]["conditions"][0]["lastUpdateTime"] = dc._pods.now_rfc3339()
    assert not dc.deployment_timed_out(d, d["status"])
