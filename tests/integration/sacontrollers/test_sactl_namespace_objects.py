"""Against a real `kyb server`: every namespace gets the `default` ServiceAccount and
the `kube-root-ca.crt` ConfigMap (the cluster CA), and both come back when deleted or
(the ConfigMap) edited."""

from __future__ import annotations

from sactl_helpers import wait_object
from kybernetes.controllers.rootca import DESCRIPTION, DESCRIPTION_ANNOTATION, ROOT_CA_CONFIGMAP


def present(obj) -> bool:
    return obj is not None


async def test_new_namespace_gets_default_sa_and_root_ca(kyb, client, namespace):
    sa = await wait_object(client.resource("", "v1", "serviceaccounts"), "default", present, namespace=namespace)
    assert sa["metadata"]["namespace"] == namespace

    cm = await wait_object(client.resource("", "v1", "configmaps"), ROOT_CA_CONFIGMAP, present, namespace=namespace)
    assert cm["data"] == {"ca.crt": (kyb.data_dir / "tls" / "ca.crt").read_text()}
    assert cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION


async def test_system_namespaces_have_them_too(kyb, client):
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        await wait_object(client.resource("", "v1", "serviceaccounts"), "default", present, namespace=ns)
        await wait_object(client.resource("", "v1", "configmaps"), ROOT_CA_CONFIGMAP, present, namespace=ns)


async def test_deleted_default_sa_comes_back(client, namespace):
    sas = client.resource("", "v1", "serviceaccounts")
    old = await wait_object(sas, "default", present, namespace=namespace)
    await sas.delete("default", namespace)
    new = await wait_object(sas, "default", lambda o: o is not None and o["metadata"]["uid"] != old["metadata"]["uid"],
                            namespace=namespace)
    assert new["metadata"]["name"] == "default"


async def test_root_ca_restored_after_delete_and_edit(kyb, client, namespace):
    ca = (kyb.data_dir / "tls" / "ca.crt").read_text()
    cms = client.resource("", "v1", "configmaps")
    old = await wait_object(cms, ROOT_CA_CONFIGMAP, present, namespace=namespace)

    await cms.delete(ROOT_CA_CONFIGMAP, namespace)
    back = await wait_object(cms, ROOT_CA_CONFIGMAP,
                             lambda o: o is not None and o["metadata"]["uid"] != old["metadata"]["uid"],
                             namespace=namespace)
    assert back["data"] == {"ca.crt": ca}

    # edited: the data (and the description) are put back, other fields are kept
    edited = dict(back, data={"ca.crt": "not a CA", "extra": "x"})
    edited["metadata"] = dict(back["metadata"], annotations={}, labels={"keep": "me"})
    written = await cms.update(edited, namespace)
    restored = await wait_object(
        cms, ROOT_CA_CONFIGMAP,
        lambda o: o is not None and o["metadata"]["resourceVersion"] != written["metadata"]["resourceVersion"]
        and o.get("data") == {"ca.crt": ca},
        namespace=namespace)
    assert restored["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION
    assert restored["metadata"]["labels"] == {"keep": "me"}
    assert restored["metadata"]["uid"] == back["metadata"]["uid"]


async def test_kubectl_sees_them(kyb, client, namespace):
    await wait_object(client.resource("", "v1", "serviceaccounts"), "default", present, namespace=namespace)
    await wait_object(client.resource("", "v1", "configmaps"), ROOT_CA_CONFIGMAP, present, namespace=namespace)
    out = kyb.kubectl("get", "serviceaccounts,configmaps", "-n", namespace, "-o", "name").stdout.split()
    assert "serviceaccount/default" in out
    assert f"configmap/{ROOT_CA_CONFIGMAP}" in out
    ca = kyb.kubectl("get", "configmap", ROOT_CA_CONFIGMAP, "-n", namespace,
                     "-o", "jsonpath={.data.ca\\.crt}").stdout
    assert ca == (kyb.data_dir / "tls" / "ca.crt").read_text()
