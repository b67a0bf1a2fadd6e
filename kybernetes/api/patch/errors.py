"""The one exception every patch flavour raises, carrying the HTTP status upstream answers with."""

from __future__ import annotations

from typing import Optional

# The fixed text upstream puts in a Status built by NewGenericServerResponse(422, ...): the
# detailed reason of a failed JSON patch never reaches the client.
GENERIC_422_MESSAGE = "the server rejected our request due to an error in our request"

_REASONS = {
    400: "BadRequest",
    413: "RequestEntityTooLarge",
    422: "Invalid",
    # Upstream returns some SMP errors as plain Go errors; the API server turns those into a
    # 500 Status whose reason is empty (StatusReasonUnknown).
    500: "",
}


class PatchError(ValueError):
    """A patch could not be applied.

    ``code`` is the HTTP status the upstream API server answers with for this failure:

    * 400 (reason ``BadRequest``): the patch document is malformed (JSON patch that is not a list
      of objects, SMP that is not an object, bad ``$retainKeys`` / ``$setElementOrder`` /
      ``$deleteFromPrimitiveList`` formats).
    * 413 (reason ``RequestEntityTooLarge``): more than 10000 JSON patch operations.
    * 422 (reason ``Invalid``): a well-formed patch that does not apply (JSON patch ``test``
      failure, missing path, bad index, unknown op; SMP list of lists).
    * 500 (reason ``""``): kept for server-side failures only.  SMP errors upstream does not
      classify (missing merge key, unknown ``$patch`` directive, ``$setElementOrder``
      mismatch, mixed element types) upstream answers with a bare 500; they are the
      client's fault, so this server answers them 400 BadRequest.

    ``message`` is the detailed explanation; ``status_message`` is what upstream puts in the
    Status ``message`` (for 422 JSON patch failures that is a fixed generic sentence).
    """

    def __init__(
        self,
        message: str,
        code: int = 422,
        *,
        reason: Optional[str] = None,
        status_message: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = _REASONS.get(code, "") if reason is None else reason
        self.status_message = message if status_message is None else status_message

    def __repr__(self) -> str:
        return f"PatchError({self.message!r}, code={self.code})"
