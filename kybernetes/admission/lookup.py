"""Reads the admission plugins need: objects from the apiserver's watch caches, falling
back to the store (as upstream's plugins fall back from their listers to a live lookup)."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any, Optional

from kybernetes.apiserver import errors
from kybernetes.apiserver.objects import ObjectStore, collection_prefix, object_key

Obj = dict[str, Any]


def strategy(group: str, version: str, resource: str):
    from kybernetes.api.catalog import default_catalog

    s = default_catalog().lookup(group, version, resource)
    if s is None:  # pragma: no cover - the catalog always serves these
        raise LookupError(f"{group}/{version} {resource} is not served")
    return s


async def list_objects(objects: ObjectStore, group: str, version: str, resource: str, namespace: str = "") -> list[Obj]:
    """Every object of a resource (in one namespace), as current as the store."""
    s = strategy(group, version, resource)
    prefix = collection_prefix(s, namespace)
    cache = await objects.cache(s)
    try:
        await cache.sync(timeout=1.0)
        kvs = cache.list(prefix=prefix).items
    except (TimeoutError, asyncio.TimeoutError):
        kvs = (await objects.store.list(prefix)).items
    return [objects.decode(kv) for kv in kvs]


async def get_object(objects: ObjectStore, group: str, version: str, resource: str, namespace: str,
                     name: str) -> Optional[Obj]:
    s = strategy(group, version, resource)
    kv = await objects.read(s, object_key(s, namespace, name))
    return objects.decode(kv) if kv is not None else None


def forbidden(r: Any, name: str, why: str) -> errors.APIError:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <why>`."""
    s = r.strategy
    return errors.forbidden(s.resource, s.group, name, why)


def subresource(r: Any) -> str:
    return getattr(r.info, "subresource", "") or ""


# ---------------------------------------------------------------- quantities
_DEC = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}


def quantity(value: Any) -> Fraction:
    """The exact value of a resource.Quantity string (or number)."""
    from kybernetes.registry.base import parse_quantity

    q = parse_quantity(value)
    if q is None:
        raise ValueError(f"quantities must match the regular expression: {value!r}")
    return Fraction(q)


def quantity_string(value: Any) -> str:
    """Quantity.String(): the canonical form, keeping the binary/decimal format of the input."""
    s = str(value).strip()
    q = quantity(s)
    binary = any(s.endswith(suffix) for suffix in _BIN)
    sign = "-" if q < 0 else ""
    q = abs(q)
    if q == 0:
        return "0"
    if binary and q.denominator == 1:
        for suffix, exp in sorted(_BIN.items(), key=lambda kv: -kv[1]):
            if q % (1 << exp) == 0:
                return f"{sign}{q // (1 << exp)}{suffix}"
        return f"{sign}{q}"
    # decimal SI: the largest exponent (a multiple of 3) that leaves an integer; at least
    # nano (upstream rounds finer values up)
    for suffix, exp in sorted(_DEC.items(), key=lambda kv: -kv[1]):
        scaled = q / Fraction(10) ** exp
        if scaled.denominator == 1:
            if binary and exp > 0:
                continue
            return f"{sign}{scaled.numerator}{suffix}"
    import math

    return f"{sign}{math.ceil(q * 10 ** 9)}n"
