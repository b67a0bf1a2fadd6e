"""Jobs against a real `kyb server` (its Job controller runs in it).

There is no kubelet: `fake_kubelet_finish` plays it, writing a terminal phase with a
terminated container state through pods/status."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from fixtures.waits import wait_until as _wait_until  # noqa: E402

Obj = dict[str, Any]
_CLIENT: dict[str, Any] = {}
_WATCHED = (("batch", "v1", "jobs"), ("batch", "v1", "cronjobs"), ("", "v1", "pods"))


@pytest.fixture(autouse=True)
def _remember(client, namespace):
    _CLIENT["client"], _CLIENT["ns"] = client, namespace
    yield


async def wait_until(fn: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Check `fn` now and after every watch event on the namespace's jobs, cronjobs and pods."""
    client, ns = _CLIENT["client"], _CLIENT["ns"]
    return await _wait_until(client, [(gvr, ns) for gvr in _WATCHED], fn, timeout, what)


def job(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox:1"}]}}, **spec}}


async def fake_kubelet_finish(client: Any, pod: Obj, *, exit_code: int = 0) -> Obj:
    """Play the kubelet: the pod's container terminated with `exit_code`."""
    phase = "Succeeded" if exit_code == 0 else "Failed"
    reason = "Completed" if exit_code == 0 else "Error"
    status = {"phase": phase, "containerStatuses": [{
        "name": "c", "image": "busybox:1", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                                 "startedAt": "2024-01-01T00:00:00Z", "finishedAt": "2024-01-01T00:00:01Z"}}}]}
    return await client.resource("", "v1", "pods").patch(pod["metadata"]["name"], {"status": status},
                                                          namespace=pod["metadata"]["namespace"],
                                                          subresource="status")


async def job_pods(client: Any, ns: str, j: Obj) -> list[Obj]:
    pods = (await client.resource("", "v1", "pods").list(ns))["items"]
    return [p for p in pods if any(r.get("uid") == j["metadata"]["uid"] for r in p["metadata"].get("ownerReferences") or [])]


def cond(j: Obj, t: str) -> bool:
    return any(c["type"] == t and c["status"] == "True" for c in (j.get("status") or {}).get("conditions") or [])


async def test_job_completions_3_parallelism_2(client, namespace):
    jobs = client.resource("batch", "v1", "jobs")
    j = await jobs.create(job("work", completions=3, parallelism=2), namespace)

    async def running(n: int) -> Any:
        ps = [p for p in await job_pods(client, namespace, j) if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return ps if len(ps) == n else None

    first = await wait_until(lambda: running(2), what="2 active pods")
    for p in first:
        assert "batch.kubernetes.io/job-tracking" in p["metadata"]["finalizers"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"

    async def active2() -> Any:
        cur = await jobs.get("work", namespace)
        return cur if (cur.get("status") or {}).get("active") == 2 else None

    cur = await wait_until(active2, what="status.active 2")
    assert cur["status"].get("startTime")
    for p in first:
        await fake_kubelet_finish(client, p)
    last = await wait_until(lambda: running(1), what="the third pod")
    await fake_kubelet_finish(client, last[0])

    async def complete() -> Any:
        cur = await jobs.get("work", namespace)
        return cur if cond(cur, "Complete") else None

    done = await wait_until(complete, what="Complete")
    st = done["status"]
    assert st["succeeded"] == 3 and st.get("failed", 0) == 0 and st.get("active", 0) == 0
    assert st.get("completionTime")
    assert cond(done, "SuccessCriteriaMet")
    assert not (st.get("uncountedTerminatedPods") or {}).get("succeeded")
    pods = await job_pods(client, namespace, j)
    assert len(pods) == 3
    assert all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or []) for p in pods)


async def test_job_backoff_limit(client, namespace):
    jobs = client.resource("batch", "v1", "jobs")
    j = await jobs.create(job("flaky", completions=2, parallelism=2, backoffLimit=1), namespace)

    async def two() -> Any:
        ps = await job_pods(client, namespace, j)
        return ps if len(ps) == 2 else None

    for p in await wait_until(two, what="2 pods"):
        await fake_kubelet_finish(client, p, exit_code=1)

    async def failed() -> Any:
        cur = await jobs.get("flaky", namespace)
        return cur if cond(cur, "Failed") else None

    done = await wait_until(failed, what="Failed")
    assert done["status"]["failed"] == 2
    c = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert c["reason"] == "BackoffLimitExceeded"
    assert cond(done, "FailureTarget")
    assert not done["status"].get("completionTime")
    # no replacement was created
    assert len(await job_pods(client, namespace, j)) == 2


async def test_indexed_job(client, namespace):
    jobs = client.resource("batch", "v1", "jobs")
    j = await jobs.create(job("idx", completions=3, parallelism=3, completionMode="Indexed"), namespace)

    async def three() -> Any:
        ps = await job_pods(client, namespace, j)
        return ps if len(ps) == 3 else None

    pods = await wait_until(three, what="3 pods")
    idx = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert idx == [0, 1, 2]
    for p in pods:
        i = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert p["spec"]["hostname"] == f"idx-{i}"
        assert p["metadata"]["name"].startswith(f"idx-{i}-")
        env = p["spec"]["containers"][0]["env"]
        assert env[0]["name"] == "JOB_COMPLETION_INDEX"
    by_idx = {p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    await fake_kubelet_finish(client, by_idx["1"])

    async def partial() -> Any:
        cur = await jobs.get("idx", namespace)
        return cur if cur["status"].get("completedIndexes") == "1" else None

    await wait_until(partial, what="completedIndexes 1")
    await fake_kubelet_finish(client, by_idx["0"])
    await fake_kubelet_finish(client, by_idx["2"])

    async def complete() -> Any:
        cur = await jobs.get("idx", namespace)
        return cur if cond(cur, "Complete") else None

    done = await wait_until(complete, what="Complete")
    assert done["status"]["completedIndexes"] == "0-2"
    assert done["status"]["succeeded"] == 3 and done["status"].get("failed", 0) == 0


async def test_pod_failure_policy_fail_job(client, namespace):
    jobs = client.resource("batch", "v1", "jobs")
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    j = await jobs.create(job("pfp", backoffLimit=6, podFailurePolicy=policy), namespace)

    async def one() -> Any:
        ps = await job_pods(client, namespace, j)
        return ps[0] if ps else None

    await fake_kubelet_finish(client, await wait_until(one, what="pod"), exit_code=42)

    async def failed() -> Any:
        cur = await jobs.get("pfp", namespace)
        return cur if cond(cur, "Failed") else None

    done = await wait_until(failed, what="Failed")
    c = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert c["reason"] == "PodFailurePolicy" and "exit code 42" in c["message"]


async def test_suspended_job_creates_no_pods(client, namespace):
    jobs = client.resource("batch", "v1", "jobs")
    j = await jobs.create(job("sleepy", suspend=True), namespace)

    async def suspended() -> Any:
        cur = await jobs.get("sleepy", namespace)
        return cur if cond(cur, "Suspended") else None

    cur = await wait_until(suspended, what="Suspended")
    assert not cur["status"].get("startTime")
    assert await job_pods(client, namespace, j) == []
    await jobs.patch("sleepy", {"spec": {"suspend": False}}, namespace=namespace)

    async def resumed() -> Any:
        cur = await jobs.get("sleepy", namespace)
        ps = await job_pods(client, namespace, j)
        return cur if ps and not cond(cur, "Suspended") and cur["status"].get("startTime") else None

    await wait_until(resumed, what="resumed with a pod")
