"""Field management: metadata.managedFields and server-side apply, as upstream.

Types (which lists are list-maps or sets, which maps are atomic) come from the 1.37
schemas (`type_info`), from a CRD's structural schema (`crd_type_info`), or are deduced
from the values (`deduced_type_info`). Objects are plain JSON dicts.

- `update_managed_fields(old, new, manager, types=...)`: record a create / update /
  non-apply patch; sets and returns new.metadata.managedFields.
- `apply(live, config, manager, types=..., force=...)`: server-side apply; returns
  (object, managedFields) or raises `ApplyConflict` / `ManagedFieldsError`.
- `FieldSet`: sets of field paths and their FieldsV1 form.
- `conflict_message` / `conflict_causes` / `conflict_status`: the 409 upstream sends.
- `default_manager(user_agent)`, `validate_write_options(...)`: request parameters.
- `revert_timestamp_only_changes(new, old)`: keep no-op writes no-ops.
- `scale_entries_to_subresource` / `scale_entries_to_parent`: /scale writes.
"""

from kybernetes.api.managedfields.fieldpath import (
    FieldSet,
    FieldsV1Error,
    field_pe,
    index_pe,
    key_pe,
    make_path,
    path_string,
    value_pe,
)
from kybernetes.api.managedfields.manager import (
    ANCIENT_CHANGES,
    APPLY,
    BEFORE_FIRST_APPLY,
    LAST_APPLIED,
    MAX_UPDATE_MANAGERS,
    STRIPPED,
    UPDATE,
    ApplyConflict,
    Conflict,
    ManagedFieldsError,
    apply,
    build_last_applied,
    conflict_causes,
    conflict_message,
    conflict_status,
    decode_managed_fields,
    default_manager,
    encode_managed_fields,
    manager_identifier,
    now_rfc3339,
    print_manager,
    revert_timestamp_only_changes,
    scale_entries_to_parent,
    scale_entries_to_subresource,
    set_managed_fields,
    update_managed_fields,
    validate_managed_fields,
    validate_write_options,
)
from kybernetes.api.managedfields.typed import (
    Comparison,
    TypedError,
    TypeInfo,
    compare,
    crd_type_info,
    deduced_type_info,
    merge,
    remove_items,
    to_field_set,
    type_info,
    validate,
)

__all__ = [
    "ANCIENT_CHANGES", "APPLY", "BEFORE_FIRST_APPLY", "LAST_APPLIED", "MAX_UPDATE_MANAGERS", "STRIPPED", "UPDATE",
    "ApplyConflict", "Comparison", "Conflict", "FieldSet", "FieldsV1Error", "ManagedFieldsError", "TypeInfo",
    "TypedError", "apply", "build_last_applied", "compare", "conflict_causes", "conflict_message",
    "conflict_status", "crd_type_info", "decode_managed_fields", "deduced_type_info", "default_manager",
    "encode_managed_fields", "field_pe", "index_pe", "key_pe", "make_path", "manager_identifier", "merge",
    "now_rfc3339", "path_string", "print_manager", "remove_items", "revert_timestamp_only_changes",
    "scale_entries_to_parent", "scale_entries_to_subresource", "set_managed_fields", "to_field_set",
    "type_info", "update_managed_fields", "validate", "validate_managed_fields", "validate_write_options",
    "value_pe",
]
