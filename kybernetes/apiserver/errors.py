"""API errors as `meta/v1 Status` objects with upstream codes and reasons."""

from __future__ import annotations

from typing import Any, Iterable, Optional

from kybernetes.registry.base import Cause


class APIError(Exception):
    """An error the API answers with a Status body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Optional[dict[str, Any]] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        d["group"] = group
    return d


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    details=_details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    details=_details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> APIError:
    return APIError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    details=_details(name, group, resource))


OBJECT_MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, group: str, name: str, causes: Iterable[Cause]) -> APIError:
    causes = list(causes)
    parts = []
    for c in causes:
        parts.append(f"{c.field}: {c.message}" if c.field else c.message)
    if len(parts) == 1:
        summary = parts[0]
    else:
        summary = "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    d = _details(name, group, kind)
    d["causes"] = [c.as_dict() for c in causes]
    return APIError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details=d)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf ({content_type})')


def not_acceptable(accept: str) -> APIError:
    return APIError(406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf")


def forbidden(resource: str, group: str, name: str, why: str) -> APIError:
    target = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    return APIError(403, "Forbidden", f"{target} is forbidden: {why}", details=_details(name, group, resource))


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> APIError:
    return APIError(504, "Timeout", message)


def unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message, headers={"Retry-After": "1"})


def storage_unavailable(operation: str, resource: str, group: str, *, maybe_applied: bool) -> APIError:
    """The datastore did not answer (etcd down, no quorum).  Upstream's wording for an
    unreachable store; 503 when nothing was changed (a read, or a write that never left),
    504 Timeout when a write was sent and may still be applied.  Both carry Retry-After."""
    target = _qualified(resource, group) if resource else "the datastore"
    message = f"The {operation} operation against {target} could not be completed at this time, please try again."
    details: dict[str, Any] = {"name": operation, "kind": resource, "retryAfterSeconds": 1}
    if group:
        details["group"] = group
    if maybe_applied:
        return APIError(504, "Timeout", message, details=details, headers={"Retry-After": "1"})
    return APIError(503, "ServiceUnavailable", message, details=details, headers={"Retry-After": "1"})
