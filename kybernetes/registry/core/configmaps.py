"""ConfigMaps: non-secret configuration data (keys checked, 1 MiB in all, optionally immutable)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Optional

from kybernetes.registry import _checks
from kybernetes.registry.base import (
    AGE_COLUMN,
    NAME_COLUMN,
    Cause,
    Obj,
    Strategy,
    age_of,
    column,
    forbidden,
    invalid,
    too_long,
)

MAX_SIZE = 1024 * 1024  # upstream MaxSecretSize, shared by ConfigMaps and Secrets
IMMUTABLE_MESSAGE = "field is immutable when `immutable` is set"


def decoded_len(value: Any) -> int:
    """Bytes of a base64 value (JSON form of []byte); its text length if not base64."""
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value.encode())


def key_causes(data: Optional[dict[str, Any]], field: str) -> list[Cause]:
    """Every key must be a valid config key (upstream IsConfigMapKey)."""
    causes: list[Cause] = []
    for key in data or {}:
        causes += [invalid(f"{field}[{key}]", key, m) for m in _checks.is_config_map_key(key)]
    return causes


def immutable_causes(new: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    """Once `immutable: true`, neither the flag nor the data may change."""
    if not old.get("immutable"):
        return []
    causes: list[Cause] = []
    if not new.get("immutable"):
        causes.append(forbidden("immutable", IMMUTABLE_MESSAGE))
    for f in fields:
        if (new.get(f) or {}) != (old.get(f) or {}):
            causes.append(forbidden(f, IMMUTABLE_MESSAGE))
    return causes


class ConfigMapStrategy(Strategy):
    """core/v1 ConfigMap."""

    group = ""
    version = "v1"
    kind = "ConfigMap"
    resource = "configmaps"
    singular = "configmap"
    short_names = ("cm",)
    tracks_generation = False

    columns = (NAME_COLUMN, column("Data", doc=("io.k8s.api.core.v1.ConfigMap", "data")), AGE_COLUMN)

    def validate(self, obj: Obj) -> list[Cause]:
        data = obj.get("data") or {}
        binary = obj.get("binaryData") or {}
        causes = key_causes(data, "data")
        for key in binary:
            causes += [invalid(f"binaryData[{key}]", key, m) for m in _checks.is_config_map_key(key)]
            if key in data:
                causes.append(invalid(f"binaryData[{key}]", key, "duplicate of key present in data"))
        total = sum(len(str(v).encode()) for v in data.values()) + sum(decoded_len(v) for v in binary.values())
        if total > MAX_SIZE:
            causes.append(too_long("", MAX_SIZE))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        # upstream reports the immutability errors first
        return immutable_causes(new, old, ("data", "binaryData")) + self.validate(new)

    def row(self, obj: Obj) -> list[Any]:
        n = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [obj["metadata"]["name"], n, age_of(obj)]
