"""Typed exceptions of the Python client, chosen from the coordinator's
machine-readable error details (``google.rpc.ErrorInfo`` reason, then the gRPC
status code), never from message text. Transient failures are retried by the
client and surface as :class:`UnavailableError` only when retries run out.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import grpc

from ._status import FieldViolation, StatusDetails, status_details_of


class TributaryError(Exception):
    """Base class: ``code`` (gRPC status name or a client kind such as ``"INTEGRITY"``),
    ``details`` (the coordinator's message, for people), ``reason`` and ``metadata``
    (its ``ErrorInfo``), ``field_violations`` (its ``BadRequest``)."""

    def __init__(self, code: str, details: str, status: Optional[StatusDetails] = None):
        self.code = code
        self.details = details
        self.reason: Optional[str] = status.reason if status is not None else None
        self.metadata: Dict[str, str] = dict(status.metadata) if status is not None else {}
        self.field_violations: List[FieldViolation] = list(status.field_violations) if status else []
        suffix = f" ({self.reason})" if self.reason else ""
        super().__init__(f"{code}{suffix}: {details}")


class InvalidUpdateError(TributaryError):
    """The update does not fit the federation (INVALID_ARGUMENT); ``tensor`` / ``field`` name what."""

    @property
    def tensor(self) -> Optional[str]:
        return self.metadata.get("tensor")

    @property
    def field(self) -> Optional[str]:
        return self.metadata.get("field")


class PreconditionError(TributaryError):
    """The coordinator refused the call in the current state of things (FAILED_PRECONDITION)."""


class StaleRoundError(PreconditionError):
    """The round is not open for updates (reason STALE_ROUND); ``current_round`` is the coordinator's."""

    @property
    def current_round(self) -> Optional[int]:
        value = self.metadata.get("current_round")
        return int(value) if value is not None else None


class NotInCohortError(PreconditionError):
    """This client was not selected for the round (reason NOT_IN_COHORT)."""


class ConflictingUpdateError(TributaryError):
    """A different update of this client is already in the round (ALREADY_EXISTS)."""


class UpdateTooLargeError(TributaryError):
    """Over the federation's size limit (RESOURCE_EXHAUSTED); ``metadata["limit"]``."""


class QuotaExceededError(TributaryError):
    """A per-client limit of the coordinator was reached (reason QUOTA_EXCEEDED); ``metadata["quota"]``, ``["limit"]``."""


class AuthenticationError(TributaryError):
    """The token is missing or unknown (UNAUTHENTICATED)."""


class PermissionDeniedError(TributaryError):
    """Not enrolled in the federation, or acting as another client (PERMISSION_DENIED)."""


class NotFoundError(TributaryError):
    """No such federation, round or adapter (NOT_FOUND)."""


class InternalError(TributaryError):
    """A fault of the coordinator (INTERNAL/UNKNOWN); not retried."""


class UnavailableError(TributaryError):
    """Transient failures outlasted the retries; ``code`` is the last status."""


class IntegrityError(TributaryError):
    """A downloaded adapter does not hash to its content hash (code ``INTEGRITY``)."""

    def __init__(self, details: str, expected: str, actual: str):
        super().__init__("INTEGRITY", details)
        self.expected = expected
        self.actual = actual


class RoundFailedError(TributaryError):
    """The round ended without a merged adapter (``ROUND_FAILED`` / ``ROUND_ABORTED``)."""

    def __init__(self, round_number: int, state: str, failure_reason: str):
        code = "ROUND_ABORTED" if state == "aborted" else "ROUND_FAILED"
        text = f"round {round_number} {state}" + (f": {failure_reason}" if failure_reason else "")
        super().__init__(code, text)
        self.round = round_number
        self.state = state
        self.failure_reason = failure_reason


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.ABORTED,
}

_BY_REASON = {
    "STALE_ROUND": StaleRoundError,
    "NOT_IN_COHORT": NotInCohortError,
    "UPDATE_CONFLICT": ConflictingUpdateError,
    "UPDATE_TOO_LARGE": UpdateTooLargeError,
    "QUOTA_EXCEEDED": QuotaExceededError,
    "STORAGE_FULL": UnavailableError,
    "UPLOAD_DEFERRED": UnavailableError,
}

_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidUpdateError,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictingUpdateError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: UpdateTooLargeError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
}


def is_transient(err: BaseException) -> bool:
    """Whether a failed call is worth retrying: a dropped connection, a deadline, a
    restarting coordinator, reason RESUME_OFFSET_MISMATCH (ask GetUploadStatus again),
    STORAGE_FULL, or UPLOAD_DEFERRED (the coordinator gave other uploads their turn; resume)."""
    if not isinstance(err, grpc.RpcError) or not hasattr(err, "code"):
        return False
    if err.code() in _TRANSIENT:
        return True
    details = status_details_of(err)
    return details is not None and details.reason in ("RESUME_OFFSET_MISMATCH", "STORAGE_FULL", "UPLOAD_DEFERRED")


def from_rpc_error(err: grpc.RpcError) -> TributaryError:
    """The typed exception for a failed call."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    name = code.name
    details = err.details() if hasattr(err, "details") else str(err)
    status = status_details_of(err)
    cls = _BY_REASON.get(status.reason) if status is not None and status.reason else None
    if cls is None:
        cls = _BY_CODE.get(code, UnavailableError if code in _TRANSIENT else TributaryError)
    return cls(name, details or "", status)
