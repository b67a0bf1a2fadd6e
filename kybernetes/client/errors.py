"""Errors the client raises: API errors carry the server's `meta/v1 Status`."""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "ClientError",
    "TransportError",
    "APIStatusError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "AlreadyExists",
    "Gone",
    "GoneError",
    "Invalid",
    "TooManyRequests",
    "ServerError",
    "ServiceUnavailable",
    "ServerTimeout",
    "status_error",
]

Status = dict[str, Any]


class ClientError(Exception):
    """Base of everything this package raises on purpose."""


class TransportError(ClientError):
    """The request did not get an HTTP answer (connect, TLS, reset, timeout).

    `sent` is False when the request certainly never reached the server (the
    connection could not be made), so even non-idempotent verbs may be retried;
    `temporary` is False for failures a retry cannot fix (a bad certificate)."""

    def __init__(self, message: str, *, sent: bool = True, temporary: bool = True) -> None:
        super().__init__(message)
        self.sent = sent
        self.temporary = temporary


class APIStatusError(ClientError):
    """The server answered with an error; `.status` is its Status object (or one
    synthesised from the HTTP code when the body was not a Status)."""

    def __init__(self, status: Status, code: Optional[int] = None) -> None:
        self.status: Status = status
        self.code: int = int(status.get("code") or code or 0)
        self.reason: str = status.get("reason") or ""
        self.message: str = status.get("message") or ""
        super().__init__(f"{self.code} {self.reason}: {self.message}" if self.reason else f"{self.code}: {self.message}")

    @property
    def details(self) -> dict[str, Any]:
        return self.status.get("details") or {}

    @property
    def retry_after_seconds(self) -> Optional[int]:
        v = self.details.get("retryAfterSeconds")
        return int(v) if isinstance(v, (int, float)) else None


class BadRequest(APIStatusError):
    """400."""


class Unauthorized(APIStatusError):
    """401."""


class Forbidden(APIStatusError):
    """403."""


class NotFound(APIStatusError):
    """404."""


class MethodNotAllowed(APIStatusError):
    """405."""


class Conflict(APIStatusError):
    """409 with reason Conflict (a stale resourceVersion or failed precondition)."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists."""


class Gone(APIStatusError):
    """410: the requested resourceVersion (or continue token) is compacted away."""


GoneError = Gone  # the name watch users know it by


class Invalid(APIStatusError):
    """422."""


class TooManyRequests(APIStatusError):
    """429."""


class ServerError(APIStatusError):
    """5xx."""


class ServiceUnavailable(ServerError):
    """503."""


class ServerTimeout(ServerError):
    """504 (e.g. resourceVersion too large)."""


_BY_CODE: dict[int, type[APIStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
    503: ServiceUnavailable,
    504: ServerTimeout,
}

_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Gone", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


def status_error(status: Any, http_code: int) -> APIStatusError:
    """The right APIStatusError subclass for a response (`status` may be a Status dict,
    anything else decoded from the body, or None)."""
    if not (isinstance(status, dict) and status.get("kind") == "Status"):
        text = status if isinstance(status, str) else ""
        status = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": text or f"the server responded with HTTP {http_code}",
            "reason": _REASONS.get(http_code, ""), "code": http_code,
        }
    code = int(status.get("code") or http_code)
    if code == 409 and status.get("reason") == "AlreadyExists":
        cls: type[APIStatusError] = AlreadyExists
    else:
        cls = _BY_CODE.get(code) or (ServerError if code >= 500 else APIStatusError)
    return cls(status, code)
