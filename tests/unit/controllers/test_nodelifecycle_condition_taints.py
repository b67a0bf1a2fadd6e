"""TaintNodesByCondition: pressure conditions become NoSchedule taints and go away with them."""

from kybernetes.controllers.nodelifecycle import desired_taints


def node(*conds, taints=None):
    n = {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": "True"}] +
                                                [{"type": t, "status": s} for t, s in conds]}}
    if taints is not None:
        n["spec"] = {"taints": taints}
    return n


def test_pressure_taints_follow_conditions():
    taints = desired_taints(node(("MemoryPressure", "True"), ("DiskPressure", "True"), ("PIDPressure", "False")))
    assert taints == [{"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
                      {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]
    # memory pressure over: its taint goes, the other taints (and a user's) stay
    user = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    after = desired_taints(node(("MemoryPressure", "False"), ("DiskPressure", "True"), taints=taints + [user]))
    assert after == [{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}, user]
    assert desired_taints(node(("DiskPressure", "False"), taints=after)) == [user]
    # a NoExecute taint with the same key is not the controller's to remove
    own = {"key": "node.kubernetes.io/memory-pressure", "effect": "NoExecute"}
    assert desired_taints(node(taints=[own])) == [own]
