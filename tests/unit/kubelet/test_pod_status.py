from kybernetes.kubelet import pod_status as ps
from kybernetes.kubelet.pod_workers import pull_policy


def test_expand():
    env = {"A": "x", "B": "y"}
    assert ps.expand("$(A)-$(B)", env) == "x-y"
    assert ps.expand("$$(A)", env) == "$(A)"
    assert ps.expand("$(C)", env) == "$(C)"
    assert ps.expand("a$", env) == "a$"
    assert ps.expand("$(A", env) == "$(A"


def test_container_env_and_command():
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "w"}}, "spec": {"nodeName": "n"}}
    c = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "$(A)2"},
                 {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                 {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
         "command": ["echo", "$(B)"], "args": ["$(N)", "$$(N)"]}
    env = ps.container_env(pod, c, pod_ip="10.0.0.5")
    assert env == [("A", "1"), ("B", "12"), ("N", "p"), ("L", "w"), ("IP", "10.0.0.5")]
    assert ps.command_and_args(c, dict(env)) == (["echo", "12"], ["p", "$(N)"])


def test_linux_resources():
    r = ps.linux_resources({"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "64Mi"}}})
    assert r == {"cpu_shares": 256, "cpu_period": 100000, "cpu_quota": 50000, "memory_limit_in_bytes": 64 << 20}
    assert ps.linux_resources({}) == {"cpu_shares": 2}
    assert ps.linux_resources({"resources": {"limits": {"cpu": "1"}}})["cpu_shares"] == 1024


def _pod(policy, n=1):
    return {"spec": {"restartPolicy": policy, "containers": [{"name": f"c{i}"} for i in range(n)]}}


def term(code):
    return {"state": {"terminated": {"exitCode": code}}}


def test_phase():
    run = {"state": {"running": {}}}
    assert ps.pod_phase(_pod("Always"), [], [], init_failed=False) == "Pending"
    assert ps.pod_phase(_pod("Always"), [], [run], init_failed=False) == "Running"
    assert ps.pod_phase(_pod("Never"), [], [term(3)], init_failed=False) == "Failed"
    assert ps.pod_phase(_pod("Never"), [], [term(0)], init_failed=False) == "Succeeded"
    assert ps.pod_phase(_pod("OnFailure"), [], [term(1)], init_failed=False) == "Running"
    assert ps.pod_phase(_pod("OnFailure"), [], [term(0)], init_failed=False) == "Succeeded"
    assert ps.pod_phase(_pod("Always"), [], [term(0)], init_failed=False) == "Running"
    assert ps.pod_phase(_pod("Never", 2), [], [run, term(0)], init_failed=False) == "Running"
    assert ps.pod_phase(_pod("Never"), [], [], init_failed=True) == "Failed"


def test_conditions():
    pod = _pod("Always")
    conds = {c["type"]: c for c in ps.pod_conditions(pod, "Running", sandbox_ready=True, init_done=True,
                                                     statuses=[{"ready": True}])}
    assert conds["Ready"]["status"] == "True" and conds["ContainersReady"]["status"] == "True"
    assert conds["Initialized"]["status"] == "True" and conds["PodScheduled"]["status"] == "True"
    assert conds["PodReadyToStartContainers"]["status"] == "True"
    conds = {c["type"]: c for c in ps.pod_conditions(pod, "Failed", sandbox_ready=True, init_done=True,
                                                     statuses=[{"ready": False}])}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "PodCompleted"


def test_pull_policy():
    assert pull_policy({"image": "busybox"}) == "Always"
    assert pull_policy({"image": "busybox:latest"}) == "Always"
    assert pull_policy({"image": "localhost:5000/busybox:1.35"}) == "IfNotPresent"
    assert pull_policy({"image": "busybox:1.35", "imagePullPolicy": "Never"}) == "Never"


def test_sidecars_do_not_block_phase_and_count_for_readiness():
    from kybernetes.kubelet import pod_status as ps
    pod = {"spec": {"restartPolicy": "Never",
                    "initContainers": [{"name": "init"}, {"name": "side", "restartPolicy": "Always"}],
                    "containers": [{"name": "app"}]}}
    done_init = {"name": "init", "state": {"terminated": {"exitCode": 0}}}
    app_done = {"name": "app", "state": {"terminated": {"exitCode": 0}}, "ready": False}
    app_running = {"name": "app", "state": {"running": {}}, "ready": True}
    assert ps.pod_phase(pod, [done_init], [app_done], init_failed=False) == "Succeeded"
    assert ps.pod_phase(pod, [done_init], [app_running], init_failed=False) == "Running"
    side_unready = {"name": "side", "state": {"running": {}}, "ready": False}
    conds = {c["type"]: c["status"] for c in ps.pod_conditions(pod, "Running", sandbox_ready=True, init_done=True,
                                                                 statuses=[app_running], sidecars=[side_unready])}
    assert conds["Ready"] == "False" and conds["ContainersReady"] == "False"
    conds = {c["type"]: c["status"] for c in ps.pod_conditions(pod, "Running", sandbox_ready=True, init_done=True,
                                                                 statuses=[app_running],
                                                                 sidecars=[dict(side_unready, ready=True)])}
    assert conds["Ready"] == "True"
