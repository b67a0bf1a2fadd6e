"""Shared helpers for admission plugin unit tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional

from kybernetes.admission import lookup
from kybernetes.apiserver.objects import object_key


async def put(objects: Any, group: str, version: str, resource: str, obj: dict,
              namespace: Optional[str] = None) -> None:
    """Store `obj` directly (no admission), as a controller or earlier test step would."""
    s = lookup.strategy(group, version, resource)
    ns = namespace if namespace is not None else obj["metadata"].get("namespace", "")
    key = object_key(s, ns, obj["metadata"]["name"])
    await objects.store.create(key, objects.encode(key, obj))


def req(resource: str = "pods", ns: str = "ns1", sub: str = "", group: str = "", version: str = "v1",
        dry_run: bool = False) -> SimpleNamespace:
    """The parts of an apiserver Request an admission step reads."""
    return SimpleNamespace(strategy=lookup.strategy(group, version, resource),
                           info=SimpleNamespace(namespace=ns, subresource=sub), dry_run=dry_run, http={})


def pod(name: str = "p", resources: Optional[dict] = None, **spec: Any) -> dict:
    """A one-container pod in ns1."""
    c: dict = {"name": "c", "image": "nginx"}
    if resources is not None:
        c["resources"] = resources
    return {"metadata": {"name": name, "namespace": "ns1"}, "spec": {"containers": [c], **spec}}
