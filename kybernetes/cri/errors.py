"""Errors raised by CRIClient: one class per gRPC status a caller acts on."""

from __future__ import annotations

from typing import Optional

import grpc


class CRIError(Exception):
    """A CRI call failed.  `code` is the grpc.StatusCode, `method` the RPC name."""

    def __init__(self, method: str, code: Optional[grpc.StatusCode], details: str, endpoint: str = ""):
        self.method = method
        self.code = code
        self.details = details
        self.endpoint = endpoint
        name = code.name if code is not None else "ERROR"
        where = f" at {endpoint}" if endpoint else ""
        super().__init__(f"CRI {method}{where}: {name}: {details}")


class CRINotFound(CRIError):
    """The sandbox, container or image does not exist."""


class CRIUnavailable(CRIError):
    """The runtime cannot be reached (socket missing, containerd not running or restarting)."""


class CRIUnimplemented(CRIError):
    """The runtime does not implement this RPC (e.g. GetContainerEvents on containerd 1.6)."""


class CRITimeout(CRIError):
    """The call's deadline passed."""


class CRIAlreadyExists(CRIError):
    """A sandbox or container with the same name (metadata) exists already."""


class CRIInvalidArgument(CRIError):
    """The runtime rejected the request."""


_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: CRINotFound,
    grpc.StatusCode.UNAVAILABLE: CRIUnavailable,
    grpc.StatusCode.UNIMPLEMENTED: CRIUnimplemented,
    grpc.StatusCode.DEADLINE_EXCEEDED: CRITimeout,
    grpc.StatusCode.ALREADY_EXISTS: CRIAlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: CRIInvalidArgument,
}


def error_for(method: str, code: Optional[grpc.StatusCode], details: str, endpoint: str = "") -> CRIError:
    cls = _BY_CODE.get(code, CRIError) if code is not None else CRIError
    # containerd reports some missing objects as UNKNOWN with "not found" in the text.
    if cls is CRIError and details and "not found" in details.lower():
        cls = CRINotFound
    return cls(method, code, details, endpoint)
