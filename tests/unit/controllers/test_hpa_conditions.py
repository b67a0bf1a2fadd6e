"""HPA conditions keep their transition time unless their status changes (upstream
setConditionInList)."""

from kybernetes.controllers.horizontalpodautoscaler import set_condition


def test_transition_time_moves_only_with_the_status():
    st: dict = {}
    set_condition(st, "ScalingActive", "False", "FailedGetResourceMetric", "m1", "T1")
    set_condition(st, "ScalingActive", "False", "FailedGetPodsMetric", "m2", "T2")
    [c] = st["conditions"]
    assert (c["reason"], c["message"], c["lastTransitionTime"]) == ("FailedGetPodsMetric", "m2", "T1")
    set_condition(st, "ScalingActive", "True", "ValidMetricFound", "m3", "T3")
    assert st["conditions"][0]["lastTransitionTime"] == "T3"
    set_condition(st, "AbleToScale", "True", "SucceededGetScale", "m4", "T4")
    assert [c["type"] for c in st["conditions"]] == ["ScalingActive", "AbleToScale"]
