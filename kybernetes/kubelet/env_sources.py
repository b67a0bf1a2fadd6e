"""ConfigMaps and Secrets behind a container's environment (`envFrom`, `configMapKeyRef`,
`secretKeyRef`), as upstream's makeEnvironmentVariables reads them: fetched before the env
is built, a missing object or key fails the container start (CreateContainerConfigError)
unless the reference is optional, in which case the variable is left out."""

from __future__ import annotations

import base64
from typing import Any, Awaitable, Callable, Mapping, Optional

Obj = dict[str, Any]
Sources = Mapping[tuple[str, str], Optional[Obj]]  # (resource, name) -> object, None if absent
# the kubelet's object managers name the kinds in the singular in their NotFound errors
_KIND = {"configmaps": "configmap", "secrets": "secret"}
_TITLE = {"configmaps": "ConfigMap", "secrets": "Secret"}


class EnvSourceError(Exception):
    """A referenced ConfigMap/Secret or key is missing and not optional."""


def references(container: Obj) -> list[tuple[str, str]]:
    """(resource, name) of every ConfigMap and Secret the container's env refers to."""
    out: list[tuple[str, str]] = []
    for ef in container.get("envFrom") or []:
        if (ef.get("configMapRef") or {}).get("name"):
            out.append(("configmaps", ef["configMapRef"]["name"]))
        elif (ef.get("secretRef") or {}).get("name"):
            out.append(("secrets", ef["secretRef"]["name"]))
    for e in container.get("env") or []:
        vf = e.get("valueFrom") or {}
        if (vf.get("configMapKeyRef") or {}).get("name"):
            out.append(("configmaps", vf["configMapKeyRef"]["name"]))
        elif (vf.get("secretKeyRef") or {}).get("name"):
            out.append(("secrets", vf["secretKeyRef"]["name"]))
    return list(dict.fromkeys(out))


async def fetch(container: Obj, get: Callable[[str, str], Awaitable[Optional[Obj]]]) -> dict[tuple[str, str], Optional[Obj]]:
    """The objects the container's env refers to, by `get(resource, name)` (None: not found)."""
    return {ref: await get(*ref) for ref in references(container)}


def _data(resource: str, obj: Obj) -> dict[str, str]:
    data = obj.get("data") or {}
    if resource == "secrets":
        return {k: base64.b64decode(v or "").decode("utf-8", "replace") for k, v in data.items()}
    return {k: str(v) for k, v in data.items()}


def _object(sources: Sources, resource: str, name: str, namespace: str, optional: bool) -> Optional[dict[str, str]]:
    obj = sources.get((resource, name))
    if obj is None:
        if optional:
            return None
        raise EnvSourceError(f'{_KIND[resource]} "{name}" not found')
    return _data(resource, obj)


def env_from(container: Obj, sources: Sources, namespace: str) -> dict[str, str]:
    """The variables of the container's envFrom, later sources overriding earlier ones."""
    out: dict[str, str] = {}
    for ef in container.get("envFrom") or []:
        for key, resource in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = ef.get(key)
            if not ref:
                continue
            data = _object(sources, resource, ref.get("name", ""), namespace, bool(ref.get("optional")))
            for k, v in (data or {}).items():
                out[(ef.get("prefix") or "") + k] = v
    return out


def key_ref(value_from: Obj, sources: Sources, namespace: str) -> Optional[str]:
    """The value of a configMapKeyRef/secretKeyRef; None when optional and missing (the
    variable is then not set at all)."""
    for key, resource in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
        ref = value_from.get(key)
        if not ref:
            continue
        name, k, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
        data = _object(sources, resource, name, namespace, optional)
        if data is None:
            return None
        if k not in data:
            if optional:
                return None
            raise EnvSourceError(f"couldn't find key {k} in {_TITLE[resource]} {namespace}/{name}")
        return data[k]
    return None
