"""apps/v1 and batch/v1 workloads: defaults, validation causes, printer cells."""

from __future__ import annotations

from registry_helpers import ago

from kybernetes.registry.apps.controllerrevisions import ControllerRevisionStrategy
from kybernetes.registry.apps.daemonsets import DaemonSetStrategy
from kybernetes.registry.apps.deployments import DeploymentStrategy
from kybernetes.registry.apps.replicasets import ReplicaSetStrategy
from kybernetes.registry.apps.statefulsets import StatefulSetStrategy
from kybernetes.registry.batch.cronjobs import CronJobStrategy
from kybernetes.registry.batch.jobs import JobStrategy

POD_SPEC_DEFAULTS = {
    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
    "schedulerName": "default-scheduler", "securityContext": {},
}
CONTAINER = {"name": "nginx", "image": "nginx:1.27"}
CONTAINER_DEFAULTED = {**CONTAINER, "imagePullPolicy": "IfNotPresent", "resources": {},
                       "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


def template(labels: dict | None = None, **spec: object) -> dict:
    return {"metadata": {"labels": labels or {"app": "web"}}, "spec": {"containers": [dict(CONTAINER)], **spec}}


def fields(causes) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in causes]


# ------------------------------------------------------------------ deployments
D = DeploymentStrategy()


def test_minimal_deployment_gets_upstream_defaults() -> None:
    dep = {"metadata": {"name": "web"},
           "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}
    D.default(dep)
    assert dep["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [CONTAINER_DEFAULTED], **POD_SPEC_DEFAULTS}},
    }
    assert D.validate(dep) == []


def test_recreate_gets_no_rolling_update() -> None:
    dep = {"metadata": {"name": "web"}, "spec": {"strategy": {"type": "Recreate"}, "template": template()}}
    D.default(dep)
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_validation_causes() -> None:
    dep = {"metadata": {"name": "web"}, "spec": {"replicas": -1, "template": template()}}
    D.default(dep)
    assert fields(D.validate(dep)) == [("spec.replicas", "FieldValueInvalid"), ("spec.selector", "FieldValueRequired")]
    dep["spec"].update(replicas=1, selector={"matchLabels": {"app": "other"}})
    (c,) = D.validate(dep)
    assert (c.field, c.message) == ("spec.template.metadata.labels",
                                    'Invalid value: map[string]string{"app":"web"}: `selector` does not match '
                                    "template `labels`")
    dep["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    dep["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    (c,) = D.validate(dep)
    assert (c.field, c.message) == ("spec.template.spec.restartPolicy",
                                    'Unsupported value: "Never": supported values: "Always"')


def test_deployment_selector_is_immutable() -> None:
    old = {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}}
    new = {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "v2"}},
                                                 "template": template({"app": "v2"})}}
    D.default(old)
    D.default(new)
    (c,) = D.validate_update(new, old)
    assert c.field == "spec.selector"
    assert c.message == ('Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"v2"}, '
                         "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable")


def test_deployment_row() -> None:
    dep = {"metadata": {"name": "web", "creationTimestamp": ago(300)},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": template(containers=[CONTAINER, {"name": "side", "image": "busybox"}])},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert [c.name for c in D.columns] == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers",
                                           "Images", "Selector"]
    assert D.row(dep) == ["web", "2/3", 3, 2, "5m", "nginx,side", "nginx:1.27,busybox", "app=web"]


# ------------------------------------------------------------------ other apps kinds
def test_replicaset_statefulset_daemonset() -> None:
    rs = {"metadata": {"name": "web-5d", "creationTimestamp": ago(60)},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
          "status": {"replicas": 2, "readyReplicas": 1}}
    assert ReplicaSetStrategy().row(rs) == ["web-5d", 2, 2, 1, "60s", "nginx", "nginx:1.27", "app=web"]
    assert ReplicaSetStrategy().field_values(rs)["status.replicas"] == "2"

    sts = {"metadata": {"name": "db"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template(),
                                                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                                                    "accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "1Gi"}}}}]}}
    s = StatefulSetStrategy()
    s.default(sts)
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady" and spec["replicas"] == 1
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem" and claim["status"] == {"phase": "Pending"}
    assert s.validate(sts) == []
    changed = {**sts, "spec": {**spec, "serviceName": "other"}}
    assert fields(s.validate_update(changed, sts)) == [("spec", "FieldValueForbidden")]

    ds = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
                                                  "template": template(nodeSelector={"kubernetes.io/os": "linux"})}}
    d = DaemonSetStrategy()
    d.default(ds)
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert d.validate(ds) == []
    ds["metadata"]["creationTimestamp"] = ago(90)
    ds["status"] = {"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberReady": 1}
    assert d.row(ds) == ["agent", 1, 1, 1, 0, 0, "kubernetes.io/os=linux", "90s", "nginx", "nginx:1.27", "app=web"]


def test_controllerrevision_row() -> None:
    cr = {"metadata": {"name": "agent-7f", "creationTimestamp": ago(10), "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": True}]}, "revision": 2}
    assert ControllerRevisionStrategy().row(cr) == ["agent-7f", "daemonset.apps/agent", 2, "10s"]


# ------------------------------------------------------------------ jobs / cronjobs
J = JobStrategy()


def test_job_defaults_selector_and_validation() -> None:
    job = {"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": template({"x": "y"})}}
    J.default(job)
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert job["metadata"]["labels"] == {"x": "y"}
    J.prepare_for_create(job)
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
    # a job's pods must not restart in place
    assert [(c.field, c.message) for c in J.validate(job)] == [
        ("spec.template.spec.restartPolicy", 'Unsupported value: "Always": supported values: "OnFailure", "Never"')]
    spec["template"]["spec"]["restartPolicy"] = "Never"
    assert J.validate(job) == []


def test_job_row() -> None:
    job = {"metadata": {"name": "pi", "creationTimestamp": ago(600)},
           "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"a": "b"}},
                    "template": template()},
           "status": {"succeeded": 1, "startTime": ago(600), "completionTime": ago(590),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert J.row(job) == ["pi", "Complete", "1/1", "10s", "10m", "nginx", "nginx:1.27", "a=b"]
    running = {"metadata": {"name": "p", "creationTimestamp": ago(30)}, "spec": {"parallelism": 3},
               "status": {"startTime": ago(20)}}
    assert J.row(running)[:4] == ["p", "Running", "0/1 of 3", "20s"]
    assert J.field_values(job)["status.successful"] == "1"


def test_cronjob_defaults_row_and_schedule() -> None:
    s = CronJobStrategy()
    cj = {"metadata": {"name": "backup", "creationTimestamp": ago(3600)},
          "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template(restartPolicy="OnFailure")}}}}
    s.default(cj)
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # Job defaults are not applied to templates
    assert s.validate(cj) == []
    cj["status"] = {"lastScheduleTime": ago(120), "active": [{"name": "x"}]}
    assert s.row(cj) == ["backup", "*/5 * * * *", "<none>", "False", 1, "2m", "60m", "nginx", "nginx:1.27", "<none>"]
    spec["schedule"] = "not a schedule"
    (c,) = s.validate(cj)
    assert (c.field, c.message) == ("spec.schedule", 'Invalid value: "not a schedule": expected exactly 5 fields, '
                                                     "found 3: [not a schedule]")
