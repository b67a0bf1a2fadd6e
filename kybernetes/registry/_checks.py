"""Small string checks with upstream's messages (k8s.io/apimachinery/pkg/util/validation).

Each `is_*` returns a list of problems; an empty list means valid.
TODO: switch to kybernetes.api.validation once it exports these (is_dns1123_label,
is_dns1123_subdomain, is_qualified_name, is_valid_label_value); the names here match.
"""

from __future__ import annotations

import re

from kybernetes.registry.base import Cause, invalid, required

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = _LABEL + r"(\." + _LABEL + r")*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(" + _QNAME + r")?"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_C_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """upstream validation.RegexError (its odd double spaces included)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, e in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{e}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _full(pattern: str, s: str) -> bool:
    return re.fullmatch(pattern, s) is not None


def is_dns1123_label(s: str) -> list[str]:
    errs = []
    if len(s) > 63:
        errs.append(max_len_error(63))
    if not _full(_LABEL, s):
        errs.append(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character", _LABEL, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(s: str) -> list[str]:
    errs = []
    if len(s) > 253:
        errs.append(max_len_error(253))
    if not _full(_SUBDOMAIN, s):
        errs.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
            "'.', and must start and end with an alphanumeric character", _SUBDOMAIN, "example.com"))
    return errs


def is_dns1035_label(s: str) -> list[str]:
    errs = []
    if len(s) > 63:
        errs.append(max_len_error(63))
    if not _full(_DNS1035, s):
        errs.append(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
            "alphabetic character, and end with an alphanumeric character", _DNS1035, "my-name", "abc-123"))
    return errs


def is_qualified_name(s: str) -> list[str]:
    errs: list[str] = []
    parts = s.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return [regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character", _QNAME, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if name and not _full(_QNAME, name):
        errs.append("name part " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QNAME, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(s: str) -> list[str]:
    errs = []
    if len(s) > 63:
        errs.append(max_len_error(63))
    if not _full(_LABEL_VALUE, s):
        errs.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character", _LABEL_VALUE,
            "MyValue", "my_value", "12345"))
    return errs


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


try:  # prefer the shared helpers once they exist (same names, same contract)
    from kybernetes.api.validation import (  # type: ignore[attr-defined]  # noqa: F811
        is_dns1123_label,
        is_dns1123_subdomain,
        is_qualified_name,
        is_valid_label_value,
    )
except ImportError:
    pass
