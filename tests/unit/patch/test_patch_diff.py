"""Two-way strategic merge patch creation (what kubectl edit computes)."""

from __future__ import annotations

import copy
import random

from kybernetes.api.patch import (
    apply_strategic_merge_patch,
    create_two_way_merge_patch,
    patch_schema_for,
)
from test_patch_strategic import EDIT_ORIGINAL, EDIT_PATCH, EDIT_RESULT, deployment

DEPLOYMENT = patch_schema_for("apps", "v1", "Deployment")


def test_reproduces_the_recorded_kubectl_edit_patch():
    # Exactly the patch kubectl 1.37 sent, list orders included.
    assert create_two_way_merge_patch(EDIT_ORIGINAL, EDIT_RESULT, DEPLOYMENT) == EDIT_PATCH


def test_no_change_is_empty():
    assert create_two_way_merge_patch(deployment(), deployment(), DEPLOYMENT) == {}


def test_shapes():
    old = deployment()
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["env"] = "prod"
    del new["metadata"]["labels"]["tier"]
    new["metadata"]["finalizers"] = ["b.io/f2", "c.io/f3"]
    new["spec"]["template"]["spec"]["tolerations"] = []
    new["spec"]["template"]["spec"]["containers"][0]["env"].reverse()
    patch = create_two_way_merge_patch(old, new, DEPLOYMENT)
    assert patch == {
        "metadata": {
            "labels": {"env": "prod", "tier": None},
            "finalizers": ["c.io/f3"],
            "$deleteFromPrimitiveList/finalizers": ["a.io/f1"],
            "$setElementOrder/finalizers": ["b.io/f2", "c.io/f3"],
        },
        "spec": {"template": {"spec": {
            "tolerations": [],
            "containers": [{"name": "a", "$setElementOrder/env": [{"name": "C"}, {"name": "B"}, {"name": "A"}]}],
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        }}},
    }
    assert apply_strategic_merge_patch(old, patch, DEPLOYMENT) == new


def test_round_trip_on_random_edits():
    rng = random.Random(1)
    names = list("ABCDEFG")
    for _ in range(200):
        old, new = deployment(), deployment()
        for obj in (old, new):
            c = obj["spec"]["template"]["spec"]["containers"][0]
            c["env"] = [{"name": n, "value": str(rng.randint(0, 2))} for n in rng.sample(names, rng.randint(0, 5))]
            obj["metadata"]["finalizers"] = rng.sample(["f1", "f2", "f3", "f4"], rng.randint(0, 4))
            if rng.random() < 0.5:
                obj["spec"]["template"]["spec"]["volumes"][0] = {"name": "data", "hostPath": {"path": "/x"}}
            if rng.random() < 0.3:
                del obj["spec"]["template"]["spec"]["containers"][1]
        patch = create_two_way_merge_patch(old, new, DEPLOYMENT)
        assert apply_strategic_merge_patch(old, patch, DEPLOYMENT) == new, patch


def test_without_schema_lists_are_replaced():
    old = {"spec": {"l": [1, 2], "m": {"a": 1}}}
    new = {"spec": {"l": [2], "m": {"b": 1}}}
    patch = create_two_way_merge_patch(old, new, None)
    assert patch == {"spec": {"l": [2], "m": {"a": None, "b": 1}}}
    assert apply_strategic_merge_patch(old, patch, None) == new
