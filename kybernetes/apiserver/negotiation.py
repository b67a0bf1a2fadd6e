"""Content negotiation: which body format a request carries and which a response should use."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Optional

import orjson
import yaml

from kybernetes.apiserver import errors, latency

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass
class MediaType:
    type: str  # e.g. application/json
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0


def parse_media_types(header: str) -> list[MediaType]:
    """Parse an Accept header into media types, best first (stable for equal q)."""
    out: list[MediaType] = []
    for part in (header or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = [b.strip() for b in part.split(";")]
        mt = MediaType(bits[0].lower())
        for b in bits[1:]:
            if "=" in b:
                k, v = b.split("=", 1)
                k = k.strip().lower()
                v = v.strip().strip('"')
                if k == "q":
                    try:
                        mt.q = float(v)
                    except ValueError:
                        mt.q = 0.0
                else:
                    mt.params[k] = v
        out.append(mt)
    out.sort(key=lambda m: -m.q)
    return out


@dataclass
class Output:
    """What the response body should be."""

    media: str = JSON  # JSON, YAML or PROTOBUF
    as_kind: str = ""  # "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList", "APIGroupDiscoveryList"
    as_version: str = ""  # e.g. v1, v2, v2beta1
    as_group: str = ""
    pretty: bool = False


def choose_output(accept: str, *, allow_protobuf: bool) -> Output:
    """Pick the response format from the Accept header (JSON when nothing better fits)."""
    return dataclasses.replace(_choose_output(accept, allow_protobuf))


@functools.lru_cache(maxsize=256)
def _choose_output(accept: str, allow_protobuf: bool) -> Output:
    # clients send the same few Accept headers over and over
    if not accept:
        return Output()
    saw_unsupported = False
    for mt in parse_media_types(accept):
        if mt.q <= 0:
            continue
        as_kind = mt.params.get("as", "")
        base = mt.type
        if base in ("*/*", "application/*"):
            return Output()
        if base not in (JSON, YAML, PROTOBUF):
            saw_unsupported = True
            continue
        if as_kind:
            if as_kind not in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList", "APIGroupDiscoveryList"):
                saw_unsupported = True
                continue
            if as_kind == "APIGroupDiscoveryList":
                if mt.params.get("g") != "apidiscovery.k8s.io" or mt.params.get("v") not in ("v2", "v2beta1"):
                    continue
            elif mt.params.get("g") != "meta.k8s.io" or mt.params.get("v") not in ("v1", "v1beta1"):
                continue
            if base == PROTOBUF:
                # Tables and partial metadata are served as JSON only
                continue
        if base == PROTOBUF and not allow_protobuf:
            continue
        return Output(media=base, as_kind=as_kind, as_version=mt.params.get("v", ""), as_group=mt.params.get("g", ""))
    if saw_unsupported:
        raise errors.not_acceptable(accept)
    return Output()


def content_type_of(header: Optional[str]) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def decode_body(body: bytes, content_type: str) -> Any:
    """Decode a JSON/YAML/protobuf request body into a dict (or list for JSON patch)."""
    ct = content_type_of(content_type)
    if ct in ("", JSON, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise errors.bad_request(f"error decoding request body: {e}") from None
    if ct in (YAML, APPLY_PATCH, "application/x-yaml", "text/yaml"):
        from kybernetes.apiserver import yamlbody

        try:
            return yamlbody.load(body)
        except (yaml.YAMLError, yamlbody.YAMLBodyError) as e:
            raise errors.bad_request(f"error decoding YAML: {e}") from None
    if ct == PROTOBUF:
        from kybernetes.api import protobuf

        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as e:
            raise errors.bad_request(f"error decoding protobuf body: {e}") from None
    raise errors.unsupported_media_type(ct)


def encode(obj: Any, out: Output) -> tuple[bytes, str]:
    """Serialize a response body; returns (bytes, content type).  The time counts as
    the request's serialize-response-object latency."""
    with latency.track(latency.SERIALIZE):
        return _encode(obj, out)


def _encode(obj: Any, out: Output) -> tuple[bytes, str]:
    if out.media == PROTOBUF and isinstance(obj, dict):
        from kybernetes.api import protobuf

        if protobuf.supports(obj.get("apiVersion", ""), obj.get("kind", "")):
            return protobuf.encode(obj), PROTOBUF
    if out.media == YAML:
        return yaml.safe_dump(obj, sort_keys=False).encode(), YAML
    if out.pretty:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2), JSON
    return orjson.dumps(obj), JSON
