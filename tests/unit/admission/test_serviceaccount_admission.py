"""ServiceAccount admission: default name, existence (with retry for `default`), token volume."""

from __future__ import annotations


import pytest

import admission_helpers as helpers
from kybernetes.admission.serviceaccount import MOUNT_PATH, ServiceAccount, mount_service_account_token
from kybernetes.apiserver.errors import APIError


async def put(objects, group, resource, obj):
    await helpers.put(objects, group, "v1", resource, obj)


def req(resource="pods", ns="ns1", sub=""):
    return helpers.req(resource, ns, sub)


def pod(name="p", **spec):
    return {"metadata": {"name": name, "namespace": "ns1"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


async def test_defaults_name_and_mounts_token(objects):
    await put(objects, "", "serviceaccounts", {"metadata": {"name": "default", "namespace": "ns1"}})
    p = pod(initContainers=[{"name": "i", "image": "busybox"}])
    await ServiceAccount(objects).admit("CREATE", req(), p, None)
    spec = p["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    [vol] = spec["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    srcs = vol["projected"]["sources"]
    assert vol["projected"]["defaultMode"] == 420
    assert srcs[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
    assert srcs[1] == {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    assert srcs[2]["downwardAPI"]["items"][0] == {
        "path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    for c in spec["containers"] + spec["initContainers"]:
        assert c["volumeMounts"] == [{"name": vol["name"], "readOnly": True, "mountPath": MOUNT_PATH}]


async def test_automount_opt_out_pod_and_sa(objects):
    await put(objects, "", "serviceaccounts", {"metadata": {"name": "default", "namespace": "ns1"}})
    await put(objects, "", "serviceaccounts", {"metadata": {"name": "quiet", "namespace": "ns1"},
                                               "automountServiceAccountToken": False,
                                               "imagePullSecrets": [{"name": "regcred"}]})
    p = pod(automountServiceAccountToken=False)
    await ServiceAccount(objects).admit("CREATE", req(), p, None)
    assert "volumes" not in p["spec"] and "volumeMounts" not in p["spec"]["containers"][0]
    q = pod(serviceAccountName="quiet")
    await ServiceAccount(objects).admit("CREATE", req(), q, None)
    assert "volumes" not in q["spec"]
    assert q["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # the pod's preference wins over the service account's
    w = pod(serviceAccountName="quiet", automountServiceAccountToken=True)
    await ServiceAccount(objects).admit("CREATE", req(), w, None)
    assert w["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


async def test_existing_mount_path_and_volume_are_kept(objects):
    await put(objects, "", "serviceaccounts", {"metadata": {"name": "default", "namespace": "ns1"}})
    p = pod()
    p["spec"]["containers"].append({"name": "own", "image": "x",
                                    "volumeMounts": [{"name": "mine", "mountPath": MOUNT_PATH}]})
    p["spec"]["volumes"] = [{"name": "mine", "emptyDir": {}}]
    mount_service_account_token(p, generate_name=lambda prefix: prefix + "abcde")
    assert p["spec"]["containers"][1]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT_PATH}]
    assert p["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"
    assert [v["name"] for v in p["spec"]["volumes"]] == ["mine", "kube-api-access-abcde"]


async def test_missing_service_account_is_forbidden(objects):
    plugin = ServiceAccount(objects, default_attempts=3, retry_interval=0.001)
    with pytest.raises(APIError) as e:
        await plugin.admit("CREATE", req(), pod("x", serviceAccountName="robot"), None)
    assert e.value.code == 403
    assert str(e.value) == ('pods "x" is forbidden: error looking up service account ns1/robot: '
                            'serviceaccount "robot" not found')
    with pytest.raises(APIError) as e:
        await plugin.admit("CREATE", req(), pod("x"), None)
    assert "error looking up service account ns1/default" in str(e.value)


async def test_default_service_account_created_during_retry(objects):
    import asyncio

    plugin = ServiceAccount(objects, default_attempts=10, retry_interval=0.02)
    p = pod()

    async def later():
        await asyncio.sleep(0.05)
        await put(objects, "", "serviceaccounts", {"metadata": {"name": "default", "namespace": "ns1"}})

    t = asyncio.create_task(later())
    await plugin.admit("CREATE", req(), p, None)
    await t
    assert p["spec"]["volumes"]


async def test_not_required_when_controllers_disabled_and_ignores_others(objects):
    p = pod()
    await ServiceAccount(objects, require_service_account=False, default_attempts=1).admit("CREATE", req(), p, None)
    assert p["spec"]["serviceAccountName"] == "default" and p["spec"]["volumes"]
    u = pod()
    await ServiceAccount(objects).admit("UPDATE", req(), u, pod())
    await ServiceAccount(objects).admit("CREATE", req(sub="status"), u, None)
    await ServiceAccount(objects).admit("CREATE", req("configmaps"), {"metadata": {"name": "c"}}, None)
    assert "serviceAccountName" not in u["spec"]


async def test_mirror_pods(objects):
    m = pod()
    m["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    await ServiceAccount(objects).admit("CREATE", req(), m, None)
    assert "serviceAccountName" not in m["spec"]
    m["spec"]["serviceAccountName"] = "default"
    with pytest.raises(APIError) as e:
        await ServiceAccount(objects).validate("CREATE", req(), m, None)
    assert "a mirror pod may not reference service accounts" in str(e.value)
