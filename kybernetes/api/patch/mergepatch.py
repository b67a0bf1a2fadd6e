"""RFC 7386 JSON Merge Patch (``application/merge-patch+json``).

The API server applies merge patches with evanphx/json-patch, whose one deviation from the RFC
is reproduced: when a patch value replaces something (rather than merging into an object),
nulls are pruned from the objects nested in it, including objects inside arrays; null array
elements themselves are kept.

A server handler should answer 400 "Invalid JSON Patch" itself when the request body is
``null`` or a JSON scalar (upstream refuses those before merging); this function follows the
RFC for them.
"""

from __future__ import annotations

from typing import Any

from ._json import deep_copy

__all__ = ["apply_merge_patch"]


def _pruned(value: Any) -> Any:
    """A copy of ``value`` with null members removed from every nested object."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _merge_into(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
            continue
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_into(current, value)
        elif isinstance(current, dict):
            # An object replaced by a non-object: upstream keeps the patch value as sent.
            target[key] = deep_copy(value)
        else:
            target[key] = _pruned(value)


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch to ``doc`` and return the new document.

    Null members delete, objects merge recursively, everything else replaces. Neither argument
    is mutated.
    """
    if not isinstance(patch, dict):
        return _pruned(patch)
    if not isinstance(doc, dict):
        return _pruned(patch)
    result = deep_copy(doc)
    _merge_into(result, patch)
    return result
