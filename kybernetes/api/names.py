"""Syntax checks for names, label keys and label values, with upstream's messages.

These reproduce k8s.io/apimachinery's validation (`pkg/api/validate/content` for label
keys and values, measured in bytes; `pkg/util/validation` for DNS names, measured in
characters) because kubectl shows the messages verbatim. They import nothing heavy so
that selector parsing in clients and controllers can use them too.
"""

from __future__ import annotations

import re

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_LABEL_KEY_RE = re.compile(_LABEL_KEY_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                      "and must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                          "'-' or '.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_LABEL_KEY_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                  "alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                    "'.', and must start and end with an alphanumeric character")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Upstream's RegexError wording: message, examples, then the regex (each example is
    followed by "', " before the next " or ", hence upstream's doubled spaces)."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    quoted = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {quoted}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    """util/validation.MaxLenError (used by the DNS checks)."""
    return f"must be no more than {n} characters"


def max_bytes_error(n: int) -> str:
    """validate/content.MaxLenError (used by the label key and value checks)."""
    return f"must be no more than {n} bytes"


def _blen(s: str) -> int:
    # Go measures strings in bytes.
    return len(s.encode("utf-8", "surrogatepass"))


def _dns1123_subdomain(value: str, too_long: str) -> list[str]:
    errs = []
    if _blen(value) > 253:
        errs.append(too_long)
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 label (namespaces, most short names); [] if valid."""
    errs = []
    if _blen(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """Problems with `value` as an RFC 1123 subdomain (most object names); [] if valid."""
    return _dns1123_subdomain(value, max_len_error(253))


def is_dns1035_label(value: str) -> list[str]:
    """Problems with `value` as an RFC 1035 label (Service names); [] if valid."""
    errs = []
    if _blen(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Problems with `value` as a label key / qualified name ([prefix/]name); [] if valid."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain(prefix, max_bytes_error(253)))
    else:
        return [
            "a valid label key " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part " + max_bytes_error(63))
    if not _LABEL_KEY_RE.fullmatch(name):
        errs.append("name part " + regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Problems with `value` as a label value (may be empty); [] if valid."""
    errs = []
    if _blen(value) > 63:
        errs.append(max_bytes_error(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_path_segment_name(value: str) -> list[str]:
    """Problems with `value` as a name that must be a safe URL path segment (RBAC names)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return is_path_segment_prefix(value)


def is_path_segment_prefix(value: str) -> list[str]:
    """Like is_path_segment_name, for a generateName prefix."""
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _mask_trailing_dash(name: str) -> str:
    # A generateName prefix gets random characters appended, so a trailing '-' is fine.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_errors(name: str, name_format: str, *, prefix: bool = False) -> list[str]:
    """Problems with an object name under a registry `name_format`:
    "dns1123-subdomain", "dns1123-label", "dns1035-label" or "path-segment"."""
    if name_format == "path-segment":
        return is_path_segment_prefix(name) if prefix else is_path_segment_name(name)
    if prefix:
        name = _mask_trailing_dash(name)
    if name_format == "dns1123-label":
        return is_dns1123_label(name)
    if name_format == "dns1035-label":
        return is_dns1035_label(name)
    if name_format == "dns1123-subdomain":
        return is_dns1123_subdomain(name)
    raise ValueError(f"unknown name format {name_format!r}")
