"""Service environment variables and their precedence in a container's env (upstream
envvars.FromServices, getServiceEnvVarMap, makeEnvironmentVariables)."""

from __future__ import annotations

import pytest

from kybernetes.kubelet import pod_status as ps
from kybernetes.kubelet.service_env import NOT_SYNCED, ServiceEnv, ServicesNotSynced, from_services, service_env_map


def svc(name, ns, ip, *ports):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [dict(p) for p in ports]}}


KUBERNETES = svc("kubernetes", "default", "10.43.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
FOO = svc("foo-bar", "app", "10.43.0.20", {"name": "http-alt", "port": 8080},
          {"name": "dns", "port": 53, "protocol": "UDP"})
OTHER = svc("other", "elsewhere", "10.43.0.30", {"port": 80})
HEADLESS = svc("headless", "app", "None", {"port": 80})


def test_variables_of_one_service():
    env = from_services([FOO])
    assert env == [
        ("FOO_BAR_SERVICE_HOST", "10.43.0.20"),
        ("FOO_BAR_SERVICE_PORT", "8080"),
        ("FOO_BAR_SERVICE_PORT_HTTP_ALT", "8080"),
        ("FOO_BAR_SERVICE_PORT_DNS", "53"),
        ("FOO_BAR_PORT", "tcp://10.43.0.20:8080"),
        ("FOO_BAR_PORT_8080_TCP", "tcp://10.43.0.20:8080"),
        ("FOO_BAR_PORT_8080_TCP_PROTO", "tcp"),
        ("FOO_BAR_PORT_8080_TCP_PORT", "8080"),
        ("FOO_BAR_PORT_8080_TCP_ADDR", "10.43.0.20"),
        ("FOO_BAR_PORT_53_UDP", "udp://10.43.0.20:53"),
        ("FOO_BAR_PORT_53_UDP_PROTO", "udp"),
        ("FOO_BAR_PORT_53_UDP_PORT", "53"),
        ("FOO_BAR_PORT_53_UDP_ADDR", "10.43.0.20"),
    ]


def test_ipv6_cluster_ip_is_bracketed_in_urls():
    env = dict(from_services([svc("v6", "a", "fd00::1", {"port": 80})]))
    assert env["V6_PORT"] == "tcp://[fd00::1]:80" and env["V6_PORT_80_TCP_ADDR"] == "fd00::1"


def test_namespace_links_and_master_service():
    all_svcs = [KUBERNETES, FOO, OTHER, HEADLESS]
    env = service_env_map(all_svcs, "app", True)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["FOO_BAR_SERVICE_HOST"] == "10.43.0.20"
    assert not any(k.startswith(("OTHER_", "HEADLESS_")) for k in env)
    # enableServiceLinks false: only the master service
    env = service_env_map(all_svcs, "app", False)
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}
    # a pod in default sees its namespace's services, which include kubernetes
    assert service_env_map(all_svcs, "default", False)["KUBERNETES_PORT"] == "tcp://10.43.0.1:443"


def test_own_namespace_kubernetes_service_wins():
    mine = svc("kubernetes", "app", "10.43.0.99", {"port": 1})
    for order in ([KUBERNETES, mine], [mine, KUBERNETES]):
        assert service_env_map(order, "app", True)["KUBERNETES_SERVICE_HOST"] == "10.43.0.99"
        assert service_env_map(order, "app", False)["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"


class FakeInformer:
    def __init__(self, objs, synced=True):
        self.objs, self.has_synced = objs, synced

    def by_namespace(self, ns):
        return [o for o in self.objs if o["metadata"]["namespace"] == ns]


def test_not_synced_fails_except_static_pods():
    se = ServiceEnv(FakeInformer([KUBERNETES], synced=False))
    pod = {"metadata": {"namespace": "app"}, "spec": {}}
    with pytest.raises(ServicesNotSynced) as e:
        se.for_pod(pod)
    assert str(e.value) == NOT_SYNCED == "services have not yet been read at least once, cannot construct envvars"
    assert se.for_pod(pod, static=True)["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert ServiceEnv(None).for_pod(pod) == {}


def test_enable_service_links_default_true():
    se = ServiceEnv(FakeInformer([KUBERNETES, FOO]))
    assert "FOO_BAR_SERVICE_HOST" in se.for_pod({"metadata": {"namespace": "app"}, "spec": {}})
    assert "FOO_BAR_SERVICE_HOST" not in se.for_pod({"metadata": {"namespace": "app"},
                                                     "spec": {"enableServiceLinks": False}})


def test_container_env_precedence_and_expansion():
    services = service_env_map([KUBERNETES, FOO], "app", True)
    c = {"name": "main", "command": ["echo", "$(FOO_BAR_SERVICE_HOST)", "$(MINE)"],
         "env": [{"name": "FOO_BAR_SERVICE_PORT", "value": "9999"},
                 {"name": "URL", "value": "http://$(FOO_BAR_SERVICE_HOST):$(FOO_BAR_SERVICE_PORT)"},
                 {"name": "MINE", "value": "$(KUBERNETES_SERVICE_HOST)-x"},
                 {"name": "EMPTY", "value": ""}]}
    env = ps.container_env({"metadata": {"namespace": "app"}, "spec": {"containers": [c]}}, c,
                           service_env=services)
    names = [k for k, _ in env]
    assert names[:4] == ["FOO_BAR_SERVICE_PORT", "URL", "MINE", "EMPTY"]  # the container's own first
    assert len(names) == len(set(names))
    d = dict(env)
    assert d["FOO_BAR_SERVICE_PORT"] == "9999"  # the container's env overrides the service's
    assert d["URL"] == "http://10.43.0.20:9999" and d["MINE"] == "10.43.0.1-x" and d["EMPTY"] == ""
    assert d["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert ps.command_and_args(c, d) == (["echo", "10.43.0.20", "10.43.0.1-x"], [])


def test_resource_field_ref_defaults_to_node_allocatable():
    c = {"name": "main", "resources": {"limits": {"memory": "64Mi"}},
         "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                 {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                 {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"containerName": "main",
                                                                         "resource": "requests.cpu",
                                                                         "divisor": "1m"}}}]}
    pod = {"metadata": {"namespace": "app"}, "spec": {"containers": [c]}}
    d = dict(ps.container_env(pod, c, allocatable={"cpu": "2", "memory": "4Gi"}))
    assert d == {"CPU": "2", "MEM": "64", "CPU_REQ": "0"}


# ---------------------------------------------------------------- envFrom and key references
from kybernetes.kubelet import env_sources  # noqa: E402

CM = {"data": {"A": "cm-a", "B": "cm-b", "HOST_REF": "$(KUBERNETES_SERVICE_HOST)"}}
SECRET = {"data": {"B": "c2VjcmV0LWI=", "TOKEN": "dG9r"}}  # secret-b, tok


def sources(**extra):
    return {("configmaps", "cm"): CM, ("secrets", "sec"): SECRET, ("configmaps", "gone"): None,
            ("secrets", "gone"): None, **extra}


def env_of(c, **kw):
    pod = {"metadata": {"namespace": "app"}, "spec": {"containers": [c]}}
    return ps.container_env(pod, c, sources=sources(), **kw)


def test_env_from_and_key_refs_in_upstream_order():
    c = {"name": "main",
         "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "sec"}, "prefix": "S_"},
                     {"configMapRef": {"name": "gone", "optional": True}}],
         "env": [{"name": "A", "value": "env-a $(B) $(S_TOKEN)"},
                 {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "B"}}},
                 {"name": "FROM_SEC", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
                 {"name": "OPT_KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope",
                                                                       "optional": True}}},
                 {"name": "OPT_OBJ", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x",
                                                                    "optional": True}}}]}
    assert env_sources.references(c) == [("configmaps", "cm"), ("secrets", "sec"), ("configmaps", "gone"),
                                         ("secrets", "gone")]
    d = dict(env_of(c, service_env={"KUBERNETES_SERVICE_HOST": "10.43.0.1", "S_TOKEN": "svc"}))
    # env overrides envFrom, literal values expand, values from objects do not
    assert d["A"] == "env-a cm-b tok" and d["B"] == "cm-b" and d["S_B"] == "secret-b"
    assert d["HOST_REF"] == "$(KUBERNETES_SERVICE_HOST)" and d["S_TOKEN"] == "tok"
    assert d["FROM_CM"] == "cm-b" and d["FROM_SEC"] == "tok"
    assert "OPT_KEY" not in d and "OPT_OBJ" not in d  # optional and missing: not set at all


@pytest.mark.parametrize("c,message", [
    ({"envFrom": [{"configMapRef": {"name": "gone"}}]}, 'configmap "gone" not found'),
    ({"envFrom": [{"secretRef": {"name": "gone"}}]}, 'secret "gone" not found'),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]},
     "couldn't find key nope in ConfigMap app/cm"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "nope"}}}]},
     "couldn't find key nope in Secret app/sec"),
    ({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]},
     'secret "gone" not found'),
])
def test_missing_required_sources(c, message):
    with pytest.raises(env_sources.EnvSourceError) as e:
        env_of(dict(c, name="main"))
    assert str(e.value) == message


async def test_fetch_reads_each_object_once():
    calls = []

    async def get(resource, name):
        calls.append((resource, name))
        return {"data": {}}
    c = {"envFrom": [{"configMapRef": {"name": "cm"}}],
         "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    assert await env_sources.fetch(c, get) == {("configmaps", "cm"): {"data": {}}}
    assert calls == [("configmaps", "cm")]


async def test_nodes_may_list_and_watch_services_everywhere():
    """The kubelet's Services informer runs as system:node:<name> (as upstream's system:node rules)."""
    from kybernetes.auth.authorizer import Attributes, Decision, UserInfo
    from kybernetes.auth.node_authorizer import Graph, NodeAuthorizer

    node = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
    authz = NodeAuthorizer(Graph())
    for verb in ("list", "watch"):
        a = Attributes(user=node, verb=verb, namespace="", api_group="", resource="services", subresource="", name="")
        assert (await authz.authorize(a))[0] == Decision.ALLOW


def test_field_refs():
    c = {"name": "main", "env": [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": p}}} for n, p in (
        ("IPS", "status.podIPs"), ("HOSTS", "status.hostIPs"), ("GRACE", "spec.terminationGracePeriodSeconds"),
        ("NODE", "spec.nodeName"))]}
    pod = {"metadata": {"namespace": "app"}, "spec": {"nodeName": "n1", "containers": [c]}}
    d = dict(ps.container_env(pod, c, pod_ip="10.88.0.5", host_ip="10.0.0.1"))
    assert d == {"IPS": "10.88.0.5", "HOSTS": "10.0.0.1", "GRACE": "30", "NODE": "n1"}
