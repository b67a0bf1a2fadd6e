"""Patch metadata (merge keys and patch strategies) for strategic merge patch.

:class:`PatchSchema` is the small protocol the SMP code walks. :class:`OpenAPIPatchSchema`
implements it over OpenAPI / JSON-schema definitions; :func:`patch_schema_for` serves the
Kubernetes 1.37 built-in kinds from the definitions shipped with the ``kubernetes-validate``
package, loaded once, lazily, with ``$ref`` resolution cached per definition name.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Mapping, Optional, Protocol, runtime_checkable


__all__ = [
    "PatchSchema",
    "OpenAPIPatchSchema",
    "patch_schema_for",
    "patch_schema_for_definition",
    "definitions",
    "known_kinds",
]

_MERGE_KEY = "x-kubernetes-patch-merge-key"
_STRATEGY = "x-kubernetes-patch-strategy"
_GVK = "x-kubernetes-group-version-kind"



@runtime_checkable
class PatchSchema(Protocol):
    """What strategic merge patch needs to know about one node of an object's schema.

    A node describes a value reached through a field: ``strategies`` and ``merge_key`` are that
    field's ``x-kubernetes-patch-strategy`` (split on commas) and
    ``x-kubernetes-patch-merge-key``; they are empty for the root and for list elements.
    """

    @property
    def strategies(self) -> frozenset[str]:
        """Patch strategies of the field leading here ("merge", "retainKeys", "replace")."""
        ...

    @property
    def merge_key(self) -> str:
        """Merge key of the list field leading here; "" when none."""
        ...

    def field(self, name: str) -> Optional["PatchSchema"]:
        """The node of member ``name`` of this object (or of any value, for maps); None when
        unknown."""
        ...

    def items(self) -> Optional["PatchSchema"]:
        """The node of this list's elements; None when unknown."""
        ...


class _Definitions:
    """A set of named schemas with cached, lazily built nodes per definition."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self._nodes: dict[str, Optional[OpenAPIPatchSchema]] = {}

    def resolve(self, schema: Mapping[str, Any]) -> tuple[Mapping[str, Any], Optional[str]]:
        """Follow ``allOf: [x]`` wrappers and ``$ref`` chains to the schema body."""
        name = None
        for _ in range(32):  # bound the walk in case of a cyclic alias
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
                schema = all_of[0]
                continue
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            name = ref.rsplit("/", 1)[-1]
            target = self.defs.get(name)
            if not isinstance(target, Mapping):
                return {}, name
            schema = target
        return schema, name

    def node(self, name: str) -> Optional[OpenAPIPatchSchema]:
        if name not in self._nodes:
            body = self.defs.get(name)
            self._nodes[name] = (
                OpenAPIPatchSchema(self, body, name=name) if isinstance(body, Mapping) else None
            )
        return self._nodes[name]

    def node_for(self, schema: Any) -> Optional[OpenAPIPatchSchema]:
        """The node for a property / items / additionalProperties schema."""
        if not isinstance(schema, Mapping):
            return None
        strategies = _split_strategies(schema.get(_STRATEGY))
        merge_key = schema.get(_MERGE_KEY)
        merge_key = merge_key if isinstance(merge_key, str) else ""
        body, name = self.resolve(schema)
        if name is not None and body is self.defs.get(name) and not strategies and not merge_key:
            # A plain reference: share the definition's node and its caches.
            return self.node(name)
        return OpenAPIPatchSchema(self, body, strategies=strategies, merge_key=merge_key, name=name)


def _split_strategies(value: Any) -> frozenset[str]:
    if not isinstance(value, str) or not value:
        return frozenset()
    return frozenset(s.strip() for s in value.split(",") if s.strip())


_UNSET: Any = object()


class OpenAPIPatchSchema:
    """:class:`PatchSchema` over an OpenAPI (v3 / JSON schema) definition."""

    __slots__ = ("_defs", "_body", "strategies", "merge_key", "name", "_fields", "_items")

    def __init__(
        self,
        defs: _Definitions,
        body: Mapping[str, Any],
        *,
        strategies: frozenset[str] = frozenset(),
        merge_key: str = "",
        name: Optional[str] = None,
    ) -> None:
        self._defs = defs
        self._body = body
        self.strategies = strategies
        self.merge_key = merge_key
        self.name = name
        self._fields: dict[str, Optional[OpenAPIPatchSchema]] = {}
        self._items: Any = _UNSET

    @classmethod
    def from_schema(
        cls, schema: Mapping[str, Any], defs: Optional[Mapping[str, Any]] = None
    ) -> Optional["OpenAPIPatchSchema"]:
        """A root node for ``schema``; ``$ref``s resolve by their last path segment in ``defs``."""
        return _Definitions(defs or {}).node_for(schema)

    def field(self, name: str) -> Optional["OpenAPIPatchSchema"]:
        try:
            return self._fields[name]
        except KeyError:
            pass
        props = self._body.get("properties")
        if isinstance(props, Mapping) and name in props:
            node = self._defs.node_for(props[name])
        else:
            # Maps (labels, resources.limits, ...) describe every value with
            # additionalProperties; a boolean there says nothing about the value's shape.
            node = self._defs.node_for(self._body.get("additionalProperties"))
        self._fields[name] = node
        return node

    def items(self) -> Optional["OpenAPIPatchSchema"]:
        if self._items is _UNSET:
            items = self._body.get("items")
            # Like upstream's OpenAPI lookup, a list schema without "items" describes its
            # elements itself (how pointer-to-struct lists are sometimes published).
            self._items = self._defs.node_for(items) if items is not None else self
        return self._items

    def __repr__(self) -> str:
        extra = f" strategies={sorted(self.strategies)}" if self.strategies else ""
        extra += f" merge_key={self.merge_key!r}" if self.merge_key else ""
        return f"<OpenAPIPatchSchema {self.name or '?'}{extra}>"


# --- the built-in 1.37 definitions ---------------------------------------------------------

_lock = threading.Lock()
_builtin: Optional[_Definitions] = None
_gvk_index: Optional[dict[tuple[str, str, str], str]] = None


def _load() -> tuple[_Definitions, dict[tuple[str, str, str], str]]:
    global _builtin, _gvk_index
    if _builtin is not None and _gvk_index is not None:
        return _builtin, _gvk_index
    with _lock:
        if _builtin is None or _gvk_index is None:
            from kybernetes.api.schema import raw_definitions

            defs = raw_definitions()
            index: dict[tuple[str, str, str], str] = {}
            for name, body in defs.items():
                gvks = body.get(_GVK) if isinstance(body, dict) else None
                for gvk in gvks if isinstance(gvks, list) else ():
                    key = (gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))
                    # Option types (DeleteOptions, WatchEvent, ...) claim many groups; the
                    # definition named after the kind wins any clash.
                    if key not in index or name.endswith("." + key[2]):
                        index[key] = name
            _builtin, _gvk_index = _Definitions(defs), index
    return _builtin, _gvk_index


def definitions() -> Mapping[str, Any]:
    """The raw 1.37 definitions (``$defs`` of kubernetes-validate's ``_definitions.json``)."""
    return _load()[0].defs


def patch_schema_for_definition(name: str) -> Optional[OpenAPIPatchSchema]:
    """The schema of a built-in definition such as ``io.k8s.api.core.v1.PodSpec``."""
    return _load()[0].node(name)


def patch_schema_for(group: str, version: str, kind: str) -> Optional[OpenAPIPatchSchema]:
    """The schema of a built-in kind (``""`` is the core group); None when unknown (CRDs)."""
    defs, index = _load()
    name = index.get((group, version, kind))
    return defs.node(name) if name else None


def known_kinds() -> Iterable[tuple[str, str, str]]:
    """Every (group, version, kind) with a built-in schema."""
    return tuple(_load()[1])
