"""LimitRanger admission: defaults, min/max/ratio for Container, Pod and PVC limits."""

from __future__ import annotations


import pytest

from kybernetes.apiserver.errors import APIError


from admission_helpers import pod, put, req  # noqa: E402


from kybernetes.admission.limitranger import LimitRanger, validate_pod  # noqa: E402


def lr(*items, name="lr"):
    return {"metadata": {"name": name, "namespace": "ns1"}, "spec": {"limits": list(items)}}


async def test_defaults_and_annotation(objects):
    await put(objects, "", "v1", "limitranges", lr({"type": "Container", "default": {"cpu": "500m"},
                                                     "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}))
    p = pod(resources={"requests": {"memory": "1Gi"}}, initContainers=[{"name": "i", "image": "x"}])
    await LimitRanger(objects).admit("CREATE", req(), p, None)
    assert p["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m"},
                                                       "requests": {"memory": "1Gi", "cpu": "100m"}}
    assert p["spec"]["initContainers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}
    assert p["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container c; cpu limit for container c; "
        "cpu, memory request for init container i; cpu limit for init container i")
    # pods are not touched on update
    u = pod()
    await LimitRanger(objects).admit("UPDATE", req(), u, pod())
    assert "resources" not in u["spec"]["containers"][0]


async def test_max_defaults_limit_from_item(objects):
    await put(objects, "", "v1", "limitranges", lr({"type": "Container", "max": {"memory": "1Gi"}}))
    p = pod()
    await LimitRanger(objects).admit("CREATE", req(), p, None)
    assert p["spec"]["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}, "requests": {"memory": "1Gi"}}


@pytest.mark.parametrize("item,resources,message", [
    ({"type": "Container", "max": {"cpu": "1"}}, {"limits": {"cpu": "2"}},
     "maximum cpu usage per Container is 1, but limit is 2"),
    ({"type": "Container", "max": {"cpu": "1"}}, {"requests": {"cpu": "100m"}},
     "maximum cpu usage per Container is 1.  No limit is specified"),
    ({"type": "Container", "max": {"memory": "1Gi"}}, {"limits": {"memory": "1Gi"}, "requests": {"memory": "2048Mi"}},
     "maximum memory usage per Container is 1Gi, but request is 2Gi"),
    ({"type": "Container", "min": {"cpu": "200m"}}, {"requests": {"cpu": "0.1"}},
     "minimum cpu usage per Container is 200m, but request is 100m"),
    ({"type": "Container", "min": {"cpu": "200m"}}, {},
     "minimum cpu usage per Container is 200m.  No request is specified"),
    ({"type": "Container", "min": {"cpu": "200m"}}, {"requests": {"cpu": "300m"}, "limits": {"cpu": "100m"}},
     "minimum cpu usage per Container is 200m, but limit is 100m"),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}, {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
     "cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000"),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}, {"limits": {"cpu": "1"}},
     "cpu max limit to request ratio per Container is 2, but no request is specified or request is 0"),
    ({"type": "Pod", "max": {"cpu": "1"}}, {"limits": {"cpu": "800m"}, "requests": {"cpu": "800m"}},
     "maximum cpu usage per Pod is 1, but limit is 1600m"),
])
async def test_violations(objects, item, resources, message):
    await put(objects, "", "v1", "limitranges", lr(item))
    p = pod("x", resources=resources)
    if item["type"] == "Pod":
        p["spec"]["containers"].append({"name": "d", "image": "nginx", "resources": resources})
    with pytest.raises(APIError) as e:
        await LimitRanger(objects).validate("CREATE", req(), p, None)
    assert e.value.code == 403
    assert str(e.value) == f'pods "x" is forbidden: {message}'


async def test_within_limits_and_aggregate():
    item = {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "min": {"cpu": "100m"}}
    ok = pod(resources={"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m"}})
    assert validate_pod(lr(item), ok) == []
    bad = pod(resources={"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "100m"}})
    assert validate_pod(lr(item), bad) == ["maximum cpu usage per Container is 1, but limit is 2",
                                           "maximum memory usage per Container is 1Gi, but limit is 2Gi"]


async def test_pvc_min_max(objects):
    await put(objects, "", "v1", "limitranges", lr({"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"},
                                                     "max": {"storage": "5Gi"}}))
    r = req("persistentvolumeclaims")

    def claim(size):
        return {"metadata": {"name": "c", "namespace": "ns1"},
                "spec": {"resources": {"requests": {"storage": size}}}}

    await LimitRanger(objects).validate("CREATE", r, claim("2Gi"), None)
    with pytest.raises(APIError) as e:
        await LimitRanger(objects).validate("UPDATE", r, claim("10Gi"), claim("2Gi"))
    assert str(e.value) == ('persistentvolumeclaims "c" is forbidden: '
                            "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi")
    with pytest.raises(APIError) as e:
        await LimitRanger(objects).validate("CREATE", r, claim("500Mi"), None)
    assert "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi" in str(e.value)


def test_quantity_strings():
    from kybernetes.admission.lookup import quantity_string
    assert [quantity_string(v) for v in ("1", "1000m", "0.5", "1024Mi", "1536Mi", "2000", "1k", "100Mi", "0")] == [
        "1", "1", "500m", "1Gi", "1536Mi", "2k", "1k", "100Mi", "0"]
