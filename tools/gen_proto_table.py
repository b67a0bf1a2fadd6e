#!/usr/bin/env python3
"""Build kybernetes/api/protobuf/fields.json from Kubernetes API sources.

Usage: gen_proto_table.py [-v] SRC_ROOT [OUT_JSON]

SRC_ROOT is a scratch directory laid out by Go import path, e.g.
SRC_ROOT/k8s.io/api/core/v1/{generated.proto,types.go,register.go,...}.
Fill it from checkouts of kubernetes/api (as k8s.io/api), kubernetes/apimachinery,
kubernetes/apiextensions-apiserver and kubernetes/kube-aggregator: for each
package directory with a ``generated.proto``, copy that file and the package's
non-test ``.go`` files.  Keep it outside this repository; only the output is
committed.  Every directory holding a ``generated.proto`` is read.  The Go files next to
it are read too, because the .proto alone does not say everything the JSON
mapping needs:

* the JSON name of a field (usually, but not always, the proto name:
  ``ref`` is ``$ref``, ``xKubernetesListType`` is ``x-kubernetes-list-type``);
* embedded structs that JSON inlines (``Volume.volumeSource``);
* whether a zero value is dropped from JSON (non-pointer + ``omitempty``),
  since gogo-protobuf writes such zero values on the wire anyway;
* the API group (``GroupName``) and the kinds registered in ``register.go``.

Output (minified JSON):

    {"messages": {FULL_NAME: [[json_name, number, type, flags], ...]},
     "wrappers": [FULL_NAME, ...],       # messages that JSON shows as a bare list
     "kinds": {API_VERSION: {KIND: FULL_NAME}},
     "common": {KIND: FULL_NAME}}        # meta kinds valid under any apiVersion

``type`` is a scalar name ("string", "int64", ...), a full message name, or a
two-item list [key_type, value_type] for a map field.  ``flags`` bits: 1 =
repeated, 2 = omit when zero, 4 = inlined into the parent JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field

FLAG_REPEATED = 1
FLAG_OMIT_ZERO = 2
FLAG_INLINE = 4

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kybernetes",
                           "api", "protobuf", "fields.json")

SCALARS = {
    "string", "bytes", "bool", "int32", "int64", "uint32", "uint64",
    "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64",
    "double", "float",
}

# Packages that exist only to test apimachinery itself.
SKIP_PACKAGES = ("k8s.io.apimachinery.pkg.apis.testapigroup.",)

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# metav1.AddToGroupVersion registers these under every group/version (and the
# "unversioned" ones under v1), so they may arrive with any apiVersion.
COMMON_KINDS = [
    "WatchEvent", "ListOptions", "GetOptions", "DeleteOptions", "CreateOptions",
    "UpdateOptions", "PatchOptions", "Status", "APIVersions", "APIGroupList",
    "APIGroup", "APIResourceList",
]


@dataclass
class ProtoField:
    name: str
    number: int
    type: str | list[str]
    repeated: bool


@dataclass
class ProtoMessage:
    name: str
    fields: list[ProtoField] = field(default_factory=list)
    wrapper: bool = False


@dataclass
class GoField:
    json_name: str | None  # None: field has no JSON form
    inline: bool
    omit_zero: bool


_COMMENT_RE = re.compile(r"//(.*)$")
_MSG_RE = re.compile(r"^message\s+(\w+)\s*\{$")
_FIELD_RE = re.compile(r"^(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)")
_MAP_RE = re.compile(r"^map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)")


def parse_proto(text: str) -> tuple[str, list[ProtoMessage]]:
    """Parse one generated.proto; return (package, messages with resolved types)."""
    package = ""
    messages: list[ProtoMessage] = []
    stack: list[ProtoMessage] = []
    comments: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        m = _COMMENT_RE.match(line)
        if line.startswith("//") and m:
            comments.append(m.group(1).strip())
            continue
        line = _COMMENT_RE.sub("", line).strip()
        if not line or line.startswith("/*") or line.startswith("*"):
            if not line:
                comments = []
            continue
        if line.startswith("package "):
            package = line[len("package "):].rstrip(";").strip()
        elif (m := _MSG_RE.match(line)):
            outer = stack[-1].name + "." if stack else ""
            msg = ProtoMessage(outer + m.group(1))
            # go-to-protobuf turns `type X []string` with this marker into a
            # one-field message; JSON still shows the bare list.
            msg.wrapper = "+protobuf.nullable=true" in comments
            stack.append(msg)
            messages.append(msg)
        elif line == "}":
            if stack:
                stack.pop()
        elif stack and (m := _MAP_RE.match(line)):
            stack[-1].fields.append(
                ProtoField(m.group(3), int(m.group(4)), [m.group(1), m.group(2)], False))
        elif stack and (m := _FIELD_RE.match(line)):
            stack[-1].fields.append(
                ProtoField(m.group(3), int(m.group(4)), m.group(2), m.group(1) == "repeated"))
        comments = []

    def resolve(t: str) -> str:
        if t in SCALARS:
            return t
        if t.startswith("."):
            return t[1:]
        return f"{package}.{t}"

    for msg in messages:
        msg.name = f"{package}.{msg.name}"
        for f in msg.fields:
            if isinstance(f.type, list):
                f.type = [resolve(f.type[0]), resolve(f.type[1])]
            else:
                f.type = resolve(f.type)
        if msg.wrapper:
            msg.wrapper = (len(msg.fields) == 1 and msg.fields[0].repeated
                           and msg.fields[0].type == "string")
    return package, messages


_STRUCT_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
# "Name Type `tags`" or, for an embedded field, "Type `tags`" (Go types have no spaces here).
_GOFIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?(\S+)\s+`([^`]*)`")
_TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def parse_go_structs(text: str) -> dict[str, dict[int, GoField]]:
    """Map Go struct name -> {protobuf field number: GoField} for one .go file."""
    out: dict[str, dict[int, GoField]] = {}
    current: dict[int, GoField] | None = None
    for line in text.splitlines():
        if current is None:
            m = _STRUCT_RE.match(line)
            if m:
                current = out.setdefault(m.group(1), {})
            continue
        if line.startswith("}"):
            current = None
            continue
        m = _GOFIELD_RE.match(line)
        if not m:
            continue
        go_name, go_type, tag = m.group(1), m.group(2), m.group(3)
        tags = dict(_TAG_RE.findall(tag))
        pb = tags.get("protobuf")
        if not pb or pb == "-":
            continue
        parts = pb.split(",")
        try:
            number = int(parts[1])
        except (IndexError, ValueError):
            continue
        embedded = go_name is None
        json_tag = tags.get("json")
        if json_tag is None:
            # No json tag: encoding/json uses the Go name, or inlines an embedded struct.
            json_name, opts = (None if embedded else go_name), []
        else:
            name, *opts = json_tag.split(",")
            if name == "-":
                json_name = None
            elif name == "":
                json_name = None if (embedded or "inline" in opts) else go_name
            else:
                json_name = name
        inline = json_name is None and (embedded or "inline" in opts)
        pointer = go_type.startswith("*")
        current[number] = GoField(json_name, inline, (not pointer) and "omitempty" in opts)
    return out


_GROUP_RE = re.compile(r'^const\s+GroupName\s*=\s*"([^"]*)"', re.M)
_KNOWN_RE = re.compile(r"(?<![\w.])&(\w+)\{\}")


def read_go_package(dirpath: str) -> tuple[dict[str, dict[int, GoField]], str | None, list[str]]:
    """Read the Go files of one API package: structs, group name, registered kinds."""
    structs: dict[str, dict[int, GoField]] = {}
    group: str | None = None
    kinds: list[str] = []
    for fname in sorted(os.listdir(dirpath)):
        if not fname.endswith(".go") or fname.endswith("_test.go"):
            continue
        if fname.startswith("zz_generated") or fname == "generated.pb.go":
            continue
        with open(os.path.join(dirpath, fname), encoding="utf-8") as fh:
            text = fh.read()
        for k, v in parse_go_structs(text).items():
            structs.setdefault(k, {}).update(v)
        if fname == "register.go":
            m = _GROUP_RE.search(text)
            if m:
                group = m.group(1)
            kinds.extend(_KNOWN_RE.findall(text))
    return structs, group, kinds


def build(root: str) -> tuple[dict, list[str]]:
    """Walk root; return the table as a JSON-ready dict and the renamed fields."""
    messages: dict[str, list[list]] = {}
    wrappers: list[str] = []
    kinds: dict[str, dict[str, str]] = {}
    renamed: list[str] = []
    for dirpath, _dirs, files in sorted(os.walk(root)):
        if "generated.proto" not in files:
            continue
        with open(os.path.join(dirpath, "generated.proto"), encoding="utf-8") as fh:
            package, msgs = parse_proto(fh.read())
        if package.startswith(SKIP_PACKAGES):
            continue
        structs, group, registered = read_go_package(dirpath)
        for msg in msgs:
            short = msg.name[len(package) + 1:]
            go = structs.get(short, {})
            rows = []
            for f in sorted(msg.fields, key=lambda f: f.number):
                gf = go.get(f.number)
                flags = FLAG_REPEATED if f.repeated else 0
                json_name = f.name
                if gf is not None:
                    if gf.inline:
                        flags |= FLAG_INLINE
                    elif gf.json_name is not None:
                        json_name = gf.json_name
                    # Only a lone scalar has a zero value JSON drops; a non-pointer
                    # struct is always written, omitempty or not.
                    scalar = isinstance(f.type, str) and f.type in SCALARS
                    if gf.omit_zero and scalar and not f.repeated:
                        flags |= FLAG_OMIT_ZERO
                    if json_name != f.name:
                        renamed.append(f"{msg.name}.{f.name} -> {json_name}")
                rows.append([json_name, f.number, f.type, flags])
            messages[msg.name] = rows
            if msg.wrapper:
                wrappers.append(msg.name)
        if group is not None:
            version = os.path.basename(dirpath)
            api_version = f"{group}/{version}" if group else version
            table = kinds.setdefault(api_version, {})
            for kind in registered:
                if f"{package}.{kind}" in messages:
                    table[kind] = f"{package}.{kind}"
    common = {k: f"{META}.{k}" for k in COMMON_KINDS if f"{META}.{k}" in messages}
    table = {"messages": dict(sorted(messages.items())), "wrappers": sorted(wrappers),
             "kinds": dict(sorted(kinds.items())), "common": common}
    return table, renamed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src_root", help="directory laid out as k8s.io/<repo>/<package>/")
    parser.add_argument("out", nargs="?", default=DEFAULT_OUT, help="output JSON path")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list fields whose JSON name differs from the proto name")
    args = parser.parse_args(argv[1:])
    table, renamed = build(args.src_root)
    if args.verbose:
        for line in renamed:
            print("json name differs:", line, file=sys.stderr)
    # Refuse to write a table missing the types the codec hard-wires.
    for needed in ("k8s.io.api.core.v1.Pod", f"{META}.ObjectMeta", f"{META}.Time",
                   f"{META}.MicroTime", f"{META}.WatchEvent", f"{META}.Status",
                   "k8s.io.apimachinery.pkg.runtime.RawExtension",
                   "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
                   "k8s.io.apimachinery.pkg.api.resource.Quantity"):
        if needed not in table["messages"]:
            print(f"missing message {needed}", file=sys.stderr)
            return 1
    data = json.dumps(table, separators=(",", ":"))
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(data + "\n")
    print(f"{len(table['messages'])} messages, "
          f"{sum(len(v) for v in table['kinds'].values())} kinds, "
          f"{len(renamed)} renamed fields, {len(data)} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
