"""The three PATCH flavours the API server applies to JSON-form objects.

* :func:`apply_json_patch` — RFC 6902 (``application/json-patch+json``)
* :func:`apply_merge_patch` — RFC 7386 (``application/merge-patch+json``)
* :func:`apply_strategic_merge_patch` — Kubernetes SMP (``application/strategic-merge-patch+json``),
  driven by a :class:`PatchSchema` such as :func:`patch_schema_for` returns.

:func:`create_two_way_merge_patch` computes the SMP kubectl would send for an edit.
All raise :class:`PatchError`, whose ``code`` is the HTTP status upstream answers with.
"""

from .diff import create_two_way_merge_patch
from .errors import GENERIC_422_MESSAGE, PatchError
from .jsonpatch import MAX_JSON_PATCH_OPERATIONS, apply_json_patch
from .mergepatch import apply_merge_patch
from .patchmeta import (
    OpenAPIPatchSchema,
    PatchSchema,
    definitions,
    known_kinds,
    patch_schema_for,
    patch_schema_for_definition,
)
from .strategic import apply_strategic_merge_patch

__all__ = [
    "GENERIC_422_MESSAGE",
    "MAX_JSON_PATCH_OPERATIONS",
    "OpenAPIPatchSchema",
    "PatchError",
    "PatchSchema",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_two_way_merge_patch",
    "definitions",
    "known_kinds",
    "patch_schema_for",
    "patch_schema_for_definition",
]
