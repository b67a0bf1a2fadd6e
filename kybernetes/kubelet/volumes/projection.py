"""Payload builders shared by the configMap, secret, downwardAPI and projected plugins."""

from __future__ import annotations

import base64
import math
from typing import Callable, Optional

from kybernetes.api.goformat import go_quote
from kybernetes.kubelet.volumes.atomic_writer import FileProjection
from kybernetes.kubelet.volumes.base import Obj, VolumeError
from kybernetes.scheduler.resources import parse_quantity

DEFAULT_MODE = 0o644


def key_payload(data: dict[str, bytes], items: Optional[list[Obj]], default_mode: int, *, optional: bool,
                missing_key: Callable[[str], str]) -> dict[str, FileProjection]:
    """All keys (no items) or the listed items of a ConfigMap/Secret as files."""
    out: dict[str, FileProjection] = {}
    if not items:
        for k, v in data.items():
            out[k] = FileProjection(v, default_mode)
        return out
    for it in items:
        key = it.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(missing_key(key))
        mode = it.get("mode")
        out[it.get("path") or key] = FileProjection(data[key], default_mode if mode is None else int(mode))
    return out


def configmap_data(cm: Obj) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    for k, v in (cm.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v)
    return out


def secret_data(s: Obj) -> dict[str, bytes]:
    return {k: base64.b64decode(v or "") for k, v in (s.get("data") or {}).items()}


def _format_map(m: dict) -> str:
    # upstream fieldpath.FormatMap: sorted key="quoted value" lines, no trailing newline
    return "\n".join(f"{k}={go_quote(str(m[k]))}" for k in sorted(m))


def field_value(pod: Obj, path: str) -> str:
    """A downward API fieldRef for volumes (metadata only, as upstream)."""
    meta = pod.get("metadata") or {}
    if path == "metadata.name":
        return meta.get("name", "")
    if path == "metadata.namespace":
        return meta.get("namespace", "")
    if path == "metadata.uid":
        return meta.get("uid", "")
    if path == "metadata.labels":
        return _format_map(meta.get("labels") or {})
    if path == "metadata.annotations":
        return _format_map(meta.get("annotations") or {})
    for prefix, src in (("metadata.labels", meta.get("labels") or {}),
                        ("metadata.annotations", meta.get("annotations") or {})):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str(src.get(path[len(prefix) + 2:-2], ""))
    raise VolumeError(f"unsupported fieldPath: {path}")


def resource_value(pod: Obj, ref: Obj, allocatable: dict[str, str], container: str = "") -> str:
    """A resourceFieldRef: the container's limit (node allocatable when unset) or request,
    divided by the divisor and rounded up, as upstream's ExtractContainerResourceValue."""
    name = ref.get("containerName") or container
    res = ref.get("resource", "")
    cs = [c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name]
    cs += [c for c in (pod.get("spec") or {}).get("initContainers") or [] if c.get("name") == name]
    if not cs:
        raise VolumeError(f"container {name} not found")
    resources = cs[0].get("resources") or {}
    kind, _, rname = res.partition(".")
    if kind not in ("limits", "requests") or not rname:
        raise VolumeError(f"unsupported container resource : {res}")
    q = (resources.get(kind) or {}).get(rname)
    if q is None and kind == "limits":
        q = allocatable.get(rname)
    if q is None:
        q = "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = parse_quantity("1")
    return str(math.ceil(parse_quantity(q) / divisor))


def downward_payload(pod: Obj, items: list[Obj], default_mode: int,
                     allocatable: dict[str, str]) -> dict[str, FileProjection]:
    out: dict[str, FileProjection] = {}
    for it in items or []:
        mode = it.get("mode")
        mode = default_mode if mode is None else int(mode)
        if it.get("fieldRef"):
            val = field_value(pod, it["fieldRef"].get("fieldPath", ""))
        elif it.get("resourceFieldRef"):
            val = resource_value(pod, it["resourceFieldRef"], allocatable)
        else:
            continue
        out[it.get("path", "")] = FileProjection(val.encode(), mode)
    return out
