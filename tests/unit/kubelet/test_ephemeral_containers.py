"""Which ephemeral containers the kubelet starts (once, never again, in the target's
process namespace) and how their status reads, with a stand-in pod worker."""

from __future__ import annotations

from types import SimpleNamespace

from kybernetes.cri import pb
from kybernetes.kubelet import ephemeral
from kybernetes.kubelet.pod_workers import L_CONTAINER, L_KIND


def ctr(name: str, kind: str, state=pb.CONTAINER_RUNNING, cid: str = ""):
    return SimpleNamespace(id=cid or f"id-{name}", state=state, labels={L_CONTAINER: name, L_KIND: kind})


class Worker:
    """The parts of a PodWorker the ephemeral module uses."""

    def __init__(self, *eph):
        self.pod = {"spec": {"containers": [{"name": "main", "image": "i"}], "ephemeralContainers": list(eph)}}
        self.waiting: dict = {}
        self.started: list = []

    async def start_container(self, sid, sconfig, c, attempt, kind, pod_ip, target_id=""):
        self.started.append((c["name"], attempt, kind, target_id))

    async def container_status(self, c, cur, kind):
        state = {"running": {}} if cur is not None else {"waiting": {"reason": "ContainerCreating"}}
        return {"name": c["name"], "ready": True, "started": True, "restartCount": 0, "state": state}


async def test_starts_each_new_one_once_with_its_target():
    w = Worker({"name": "dbg", "image": "b", "targetContainerName": "main"}, {"name": "plain", "image": "b"},
               {"name": "old", "image": "b"})
    main = ctr("main", "app", cid="c-main")
    # "old" ran before, maybe in an earlier sandbox, and has exited: it is never started again
    old = ctr("old", ephemeral.KIND, state=pb.CONTAINER_EXITED)
    await ephemeral.start_new(w, "sid", None, [main, old], {"main": main}, "10.0.0.1")
    assert w.started == [("dbg", 0, "ephemeral", "c-main"), ("plain", 0, "ephemeral", "")]


async def test_waits_for_a_running_target():
    w = Worker({"name": "dbg", "image": "b", "targetContainerName": "main"})
    main = ctr("main", "app", state=pb.CONTAINER_EXITED)
    await ephemeral.start_new(w, "sid", None, [main], {"main": main}, "")
    assert w.started == []
    assert w.waiting["dbg"] == ("CreateContainerError", 'target container "main" is not running')


async def test_status_is_never_ready_nor_started():
    w = Worker({"name": "dbg", "image": "b"}, {"name": "later", "image": "b"})
    got = await ephemeral.statuses(w, {"dbg": ctr("dbg", ephemeral.KIND)})
    assert got == [
        {"name": "dbg", "ready": False, "restartCount": 0, "state": {"running": {}}},
        {"name": "later", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]


def test_target_namespaces():
    ns = ephemeral.target_namespaces("abc")
    assert (ns.pid, ns.target_id, ns.network, ns.ipc) == (pb.TARGET, "abc", pb.POD, pb.POD)


def test_event_field_path():
    from kybernetes.kubelet.events import container_field_path

    w = Worker({"name": "dbg", "image": "b"})
    assert container_field_path(w.pod, "dbg") == "spec.ephemeralContainers{dbg}"
    assert container_field_path(w.pod, "main") == "spec.containers{main}"
