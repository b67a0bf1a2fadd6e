"""Which ephemeral containers the kubelet starts (once, never again, in the target's
process namespace) and how their status reads, with a stand-in pod worker."""

from __future__ import annotations

from types import SimpleNamespace

from kybernetes.cri import pb
from kybernetes.kubelet import ephemeral
from kybernetes.kubelet.pod_workers import L_CONTAINER, L_KIND, L_UID


def ctr(name: str, kind: str, state=pb.CONTAINER_RUNNING, cid: str = "", created: int = 0):
    return SimpleNamespace(id=cid or f"id-{name}", state=state, created_at=created,
                           labels={L_CONTAINER: name, L_KIND: kind, L_UID: "u1"})


class CRI:
    def __init__(self, containers=()):
        self.containers = list(containers)
        self.asked: list = []

    async def list_containers(self, labels):
        self.asked.append(labels)
        return [c for c in self.containers if all(c.labels.get(k) == v for k, v in labels.items())]


class Worker:
    """The parts of a PodWorker the ephemeral module uses."""

    def __init__(self, *eph, runtime=()):
        self.pod = {"spec": {"containers": [{"name": "main", "image": "i"}], "ephemeralContainers": list(eph)}}
        self.uid = "u1"
        self.w = SimpleNamespace(cri=CRI(runtime))
        self.waiting: dict = {}
        self.started: list = []

    async def start_container(self, sid, sconfig, c, attempt, kind, pod_ip, target_id=""):
        self.started.append((c["name"], attempt, kind, target_id))

    async def container_status(self, c, cur, kind):
        state = {"running": {"id": cur.id}} if cur is not None else {"waiting": {"reason": "ContainerCreating"}}
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
        {"name": "dbg", "ready": False, "restartCount": 0, "state": {"running": {"id": "id-dbg"}}},
        {"name": "later", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]


def test_target_namespaces():
    ns = ephemeral.target_namespaces({"spec": {}}, "abc")
    assert (ns.pid, ns.target_id, ns.network, ns.ipc) == (pb.TARGET, "abc", pb.POD, pb.POD)


def test_event_field_path():
    from kybernetes.kubelet.events import container_field_path

    w = Worker({"name": "dbg", "image": "b"})
    assert container_field_path(w.pod, "dbg") == "spec.ephemeralContainers{dbg}"
    assert container_field_path(w.pod, "main") == "spec.containers{main}"


async def test_status_of_one_from_an_earlier_sandbox():
    # the sandbox was recreated: "dbg" ran in the old one and is not started again
    older = ctr("dbg", ephemeral.KIND, state=pb.CONTAINER_EXITED, cid="old", created=1)
    newer = ctr("dbg", ephemeral.KIND, state=pb.CONTAINER_EXITED, cid="newer", created=2)
    w = Worker({"name": "dbg", "image": "b"}, runtime=[older, newer, ctr("main", "app")])
    got = await ephemeral.statuses(w, {})
    assert got[0]["state"] == {"running": {"id": "newer"}}
    assert w.w.cri.asked == [{L_UID: "u1", L_KIND: ephemeral.KIND}]
    # all there in the current sandbox: no extra runtime call
    w.w.cri.asked.clear()
    await ephemeral.statuses(w, {"dbg": newer})
    assert w.w.cri.asked == []
