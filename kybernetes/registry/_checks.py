"""Small string checks with upstream's messages (k8s.io/apimachinery/pkg/util/validation).

Each `is_*` returns a list of problems; an empty list means valid.  The name and label
checks are kybernetes.api.validation's, re-exported here for the registry modules.
"""

from __future__ import annotations

import re

from kybernetes.api.validation import (  # re-exported for the registry modules
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    max_len_error,
    regex_error,
)
from kybernetes.registry.base import Cause, invalid, required

__all__ = [
    "domain_prefixed_path_causes",
    "is_config_map_key",
    "is_dns1035_label",
    "is_dns1123_label",
    "is_dns1123_subdomain",
    "is_env_var_name",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_path_segment",
    "is_valid_port_name",
    "is_valid_port_num",
    "max_len_error",
    "regex_error",
]

_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_C_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def _full(pattern: str, s: str) -> bool:
    return re.fullmatch(pattern, s) is not None


def is_config_map_key(s: str) -> list[str]:
    """Keys of ConfigMap and Secret data."""
    errs = []
    if len(s) > 253:
        errs.append(max_len_error(253))
    if not _full(_CONFIG_KEY, s):
        errs.append(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            _CONFIG_KEY, "key.name", "KEY_NAME", "key-name"))
    if s == ".":
        errs.append("must not be '.'")
    elif s == "..":
        errs.append("must not be '..'")
    elif s.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_valid_port_name(s: str) -> list[str]:
    """IANA_SVC_NAME: what container and service port names must be."""
    errs = []
    if len(s) > 15:
        errs.append(max_len_error(15))
    if not _full(r"[-a-z0-9]+", s):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", s):
        errs.append("must contain at least one letter (a-z)")
    if "--" in s:
        errs.append("must not contain consecutive hyphens")
    if s.startswith("-") or s.endswith("-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_port_num(port: object) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_path_segment(s: str) -> list[str]:
    """path.IsValidPathSegmentName (rbac, certificate signing request names)."""
    if s in (".", ".."):
        return [f"may not be '{s}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in s]


def is_env_var_name(s: str) -> list[str]:
    """Env var names since RelaxedEnvironmentVariableValidation went GA: printable ASCII, no '='."""
    if s and all(32 <= ord(c) <= 126 and c != "=" for c in s):
        return []
    return ["a valid environment variable name must consist only of printable ASCII characters other than '='"]


_PATH_PART = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"


def domain_prefixed_path_causes(value: str, path: str) -> list[Cause]:
    """upstream IsDomainPrefixedPath ("example.com/some-path"), as field errors at `path`."""
    if not value:
        return [required(path)]
    if "/" not in value:
        return [invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    host, rest = value.split("/", 1)
    causes = [invalid(path, host, m) for m in is_dns1123_subdomain(host)]
    if not re.fullmatch(_PATH_PART, rest):
        causes.append(invalid(path, rest, regex_error("Invalid path", _PATH_PART)))
    return causes
