"""YAML request bodies decoded into JSON-shaped values, as upstream's sigs.k8s.io/yaml
does (YAML -> JSON -> object):

- timestamps stay strings, ``!!binary`` becomes its base64 text, mapping keys become
  strings (so every result can be stored and encoded as JSON);
- an alias "bomb" (a small document whose aliases expand to millions of nodes) is
  refused up front with go-yaml's ``excessive aliasing`` error instead of being expanded
  when the object is copied or encoded;
- nesting beyond go-yaml's depth limit is refused instead of exhausting the stack.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

MAX_DEPTH = 10000
# go-yaml v3: up to 400k decoded nodes 99% may come from aliases, over 4M only 10%
_RATIO_LOW, _RATIO_HIGH = 400_000, 4_000_000


class YAMLBodyError(ValueError):
    """The body is not acceptable YAML; the message says why."""


# libyaml when present: much faster, and it refuses nesting deeper than 1000 levels
# itself (the pure-Python parser is quadratic on deeply nested flow collections)
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):
    """SafeLoader without the timestamp resolver (JSON has no dates), whose mapping keys
    become strings as they are read (so `1:` and `true:` stay two different keys)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        mapping: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _RATIO_LOW:
        return 0.99
    if decoded >= _RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _RATIO_LOW) / (_RATIO_HIGH - _RATIO_LOW)


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes the document expands to (aliases counted every time they are
    used) without expanding it; iterative, so deep documents cannot overflow the stack."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    unique = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            if isinstance(node, yaml.MappingNode):
                children = [c for pair in node.value for c in pair]
            else:
                children = node.value
            total = 1 + sum(sizes[id(c)] for c in children)
            sizes[key] = total
            in_progress.discard(key)
            if total > _RATIO_HIGH * 10:
                raise YAMLBodyError("yaml: document contains excessive aliasing")
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise YAMLBodyError("yaml: anchor value contains itself")
        if depth > MAX_DEPTH:
            raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}")
        unique += 1
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            in_progress.add(key)
            stack.append((node, depth, True))
            children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
            for c in children:
                if id(c) not in sizes:
                    stack.append((c, depth + 1, False))
        else:
            sizes[key] = 1
    decoded = sizes[id(root)]
    if decoded > unique and (decoded - unique) / decoded > _allowed_alias_ratio(decoded):
        raise YAMLBodyError("yaml: document contains excessive aliasing")


def _jsonish(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}")
    if isinstance(value, dict):
        return {_key(k): _jsonish(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonish(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset, tuple)):
        return [_jsonish(v, depth + 1) for v in value]
    return value


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    if isinstance(k, (list, dict, tuple, set, frozenset)):
        raise YAMLBodyError("yaml: invalid map key: a collection cannot be a map key")
    return str(k)


def load(body: bytes | str) -> Any:
    """One YAML document as JSON-shaped Python values; raises YAMLBodyError or yaml.YAMLError."""
    loader = _Loader(body)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
        if node is None:
            return None
        _check_expansion(node)
        try:
            data = loader.construct_document(node)
        except RecursionError:
            raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
    finally:
        loader.dispose()
    try:
        return _jsonish(data)
    except RecursionError:
        raise YAMLBodyError(f"yaml: exceeded max depth of {MAX_DEPTH}") from None
