"""CronJobs against a real `kyb server`: a CronJob controller runs in the test process
on a fake clock (the schedule only fires on 29 February, so the server's own controller,
on the real clock, has nothing to do); the server's Job controller runs the jobs and
`fake_kubelet_finish` plays the kubelet."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from kybernetes.controllers.base import InformerFactory
from kybernetes.controllers.cronjob import CronJobController, job_name

from test_jobs import _remember, cond, fake_kubelet_finish, job_pods, wait_until  # noqa: F401

T0 = datetime(2028, 2, 29, 0, 0, 30, tzinfo=timezone.utc).timestamp()


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def cron(client):
    clock = FakeClock(T0)
    ctl = CronJobController(client, InformerFactory(client), clock=clock)
    await ctl.start(sync_timeout=10)
    yield ctl, clock
    await ctl.stop()


def cronjob(name: str, **spec: Any) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "* * 29 2 *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}}}}, **spec}}


async def _job(client, ns, name):
    try:
        return await client.resource("batch", "v1", "jobs").get(name, ns)
    except Exception:  # noqa: BLE001
        return None


async def _finish(client, ns, job):
    async def pod() -> Any:
        ps = await job_pods(client, ns, job)
        return ps[0] if ps else None

    await fake_kubelet_finish(client, await wait_until(pod, what=f"pod of {job['metadata']['name']}"))

    async def done() -> Any:
        j = await _job(client, ns, job["metadata"]["name"])
        return j if j and cond(j, "Complete") else None

    return await wait_until(done, what=f"{job['metadata']['name']} Complete")


async def test_cronjob_creates_jobs_and_prunes_history(client, namespace, cron):
    ctl, clock = cron
    cjs = client.resource("batch", "v1", "cronjobs")
    cj = await cjs.create(cronjob("tick", successfulJobsHistoryLimit=2), namespace)
    key = f"{namespace}/tick"
    names = []
    for minute in range(3):
        scheduled = datetime(2028, 2, 29, 0, minute, tzinfo=timezone.utc).timestamp()
        clock.t = scheduled + 30
        ctl.enqueue(key)
        name = job_name("tick", scheduled)
        names.append(name)
        j = await wait_until(lambda: _job(client, namespace, name), what=name)
        assert j["metadata"]["ownerReferences"][0]["uid"] == cj["metadata"]["uid"]
        assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].startswith(
            f"2028-02-29T00:0{minute}:00")

        async def active() -> Any:
            c = await cjs.get("tick", namespace)
            st = c.get("status") or {}
            return c if ([a["name"] for a in st.get("active") or []] == [name]
                         and st.get("lastScheduleTime") == f"2028-02-29T00:0{minute}:00Z") else None

        # (the server's own CronJob controller may write status too; wait for both fields)
        await wait_until(active, what="active ref and lastScheduleTime")
        await _finish(client, namespace, j)
        ctl.enqueue(key)

    async def pruned() -> Any:
        left = [n for n in names if await _job(client, namespace, n) is not None]
        return left if left == names[1:] else None

    assert await wait_until(pruned, what="oldest job pruned") == names[1:]

    async def settled() -> Any:
        c = await cjs.get("tick", namespace)
        return c if not (c.get("status") or {}).get("active") and (c.get("status") or {}).get("lastSuccessfulTime") else None

    await wait_until(settled, what="no active jobs, lastSuccessfulTime")


async def test_cronjob_forbid_and_replace(client, namespace, cron):
    ctl, clock = cron
    cjs = client.resource("batch", "v1", "cronjobs")
    await cjs.create(cronjob("forbid", concurrencyPolicy="Forbid"), namespace)
    await cjs.create(cronjob("replace", concurrencyPolicy="Replace"), namespace)
    m0 = datetime(2028, 2, 29, 0, 0, tzinfo=timezone.utc).timestamp()
    for n in ("forbid", "replace"):
        ctl.enqueue(f"{namespace}/{n}")
        await wait_until(lambda: _job(client, namespace, job_name(n, m0)), what=f"first {n} job")
    clock.t = m0 + 90
    for n in ("forbid", "replace"):
        ctl.enqueue(f"{namespace}/{n}")
    second = job_name("replace", m0 + 60)
    await wait_until(lambda: _job(client, namespace, second), what="replacement job")

    async def first_gone() -> Any:
        j = await _job(client, namespace, job_name("replace", m0))
        return j is None or bool(j["metadata"].get("deletionTimestamp"))

    await wait_until(first_gone, what="replaced job deleted")
    # Forbid skipped the 00:01 run while its first job still runs
    assert await _job(client, namespace, job_name("forbid", m0 + 60)) is None
    c = await cjs.get("forbid", namespace)
    assert [a["name"] for a in c["status"]["active"]] == [job_name("forbid", m0)]
