"""Job controller math and policies (pure functions)."""

from kybernetes.controllers.job import (
    COMPLETION_INDEX_ANNOTATION,
    JOB_TRACKING_FINALIZER,
    JobController,
    backoff_delay,
    format_indexes,
    is_pod_failed,
    match_pod_failure_policy,
    parse_indexes,
    pod_index,
    set_condition,
)


def test_backoff_doubles_and_caps():
    assert backoff_delay(0) == 0
    assert [backoff_delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert backoff_delay(6) == 320 and backoff_delay(7) == 360 and backoff_delay(100) == 360
    assert backoff_delay(3, base=0.01) == 0.04


def test_index_intervals():
    assert parse_indexes("1,3-5,7") == {1, 3, 4, 5, 7}
    assert parse_indexes("") == set() and parse_indexes(None) == set()
    assert format_indexes({7, 1, 3, 4, 5}) == "1,3-5,7"
    assert format_indexes(range(3)) == "0-2"
    assert format_indexes([]) == ""


def failed_pod(code=1, name="c", conditions=()):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "status": {"phase": "Failed", "conditions": list(conditions),
                       "containerStatuses": [{"name": name, "state": {"terminated": {"exitCode": code}}}]}}


POLICY = {"rules": [
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
]}


def test_pod_failure_policy_rules():
    action, msg = match_pod_failure_policy(POLICY, failed_pod(42, "main"))
    assert action == "FailJob"
    assert msg == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"
    assert match_pod_failure_policy(POLICY, failed_pod(42, "side"))[0] == "Count"  # other container
    assert match_pod_failure_policy(POLICY, failed_pod(1, "c", [{"type": "DisruptionTarget", "status": "True"}]))[0] == "Ignore"
    assert match_pod_failure_policy(POLICY, failed_pod(1))[0] is None
    assert match_pod_failure_policy(POLICY, failed_pod(0))[0] is None  # exit 0 never matches
    assert match_pod_failure_policy(None, failed_pod(42, "main")) == (None, None)


def test_is_pod_failed_with_replacement_policy():
    terminating = {"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}}
    assert is_pod_failed(terminating, {"spec": {"podReplacementPolicy": "TerminatingOrFailed"}})
    assert not is_pod_failed(terminating, {"spec": {"podReplacementPolicy": "Failed"}})
    assert is_pod_failed(failed_pod(), {"spec": {}})


def test_conditions_transition_time_moves_only_on_status_change():
    st: dict = {}
    assert set_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", "t1")
    assert not set_condition(st, "Suspended", "True", "JobSuspended", "Job suspended", "t2")
    assert set_condition(st, "Suspended", "False", "JobResumed", "Job resumed", "t3")
    c = st["conditions"][0]
    assert c["lastTransitionTime"] == "t3" and c["reason"] == "JobResumed"


def test_indexed_pod_from_template():
    job = {"metadata": {"name": "j", "namespace": "ns", "uid": "U"}}
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "U", "controller": True}
    pod = JobController.pod_for(job, template, ref, 4)
    m = pod["metadata"]
    assert m["generateName"] == "j-4-" and m["finalizers"] == [JOB_TRACKING_FINALIZER]
    assert m["annotations"][COMPLETION_INDEX_ANNOTATION] == "4" and pod_index(pod) == 4
    assert pod["spec"]["hostname"] == "j-4"
    assert pod["spec"]["containers"][0]["env"][0]["name"] == "JOB_COMPLETION_INDEX"
    plain = JobController.pod_for(job, template, ref, None)
    assert plain["metadata"]["generateName"] == "j-" and "hostname" not in plain["spec"]
    assert template["spec"]["containers"][0].get("env") is None  # template untouched
